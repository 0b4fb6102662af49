"""Ports around event streams: how many may be open, and the tickets browsers open them with.

Both are shared state once there is more than one server process (a Redis adapter will fill them
then); the in-memory adapters serve one process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from src.application.security import Principal


class StreamSlots(Protocol):
    """Counts open event streams, per client and in total, against configured limits."""

    async def acquire(self, client_id: str) -> None:
        """Take a slot for one more stream of ``client_id``.

        Raises:
            TooManyStreams: the client, or the server as a whole, is at its limit (nothing taken).
        """
        ...

    def release(self, client_id: str) -> None:
        """Give back a slot taken by :meth:`acquire` (once per successful acquire).

        Never blocks: a stream ends in places that cannot wait (a publisher's delivery, a
        cancelled task). A networked adapter sends the release in the background, and should
        let slots lapse on their own should a process die holding them.
        """
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class TicketGrant:
    """What a stream ticket stands for: a principal, at one resource, until a deadline.

    Attributes:
        principal: who the ticket was issued to (client, scopes, token id, token expiry).
        resource: the resource it was issued at; it is valid there only.
        expires_at: UNIX seconds after which it is void.
    """

    principal: Principal
    resource: str
    expires_at: float


class TicketStore(Protocol):
    """Short-lived, single-use tickets: an opaque string standing for a :class:`TicketGrant`."""

    async def issue(self, ticket: str, grant: TicketGrant) -> None:
        """Keep ``grant`` under ``ticket`` until it is redeemed or ``grant.expires_at`` passes."""
        ...

    async def redeem(self, ticket: str) -> TicketGrant | None:
        """Take the grant of ``ticket``, at most once; ``None`` if unknown or already redeemed.

        A store may return a grant that has expired (it need not purge on time); the caller
        checks ``expires_at``.
        """
        ...
