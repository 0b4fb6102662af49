"""Use case: a short-lived, single-use ticket that opens one event stream (for browsers).

A browser's ``EventSource`` cannot send an ``Authorization`` header, and an access token must
never travel in a URL; a ticket may: it is good for one stream, at one resource, for seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from src.application.ports import Clock, IdSource
from src.application.ports.streams import TicketGrant, TicketStore
from src.application.security import Principal, Scope, require_scope


@dataclass(frozen=True, slots=True, kw_only=True)
class IssueStreamTicketCommand:
    """The resource the ticket will be redeemed at (where the token was presented)."""

    resource: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamTicket:
    """A ticket, and how many seconds it is good for."""

    ticket: str
    expires_in: int


class IssueStreamTicket:
    """Issues stream tickets.

    Rules:
        - needs the ``sse`` scope;
        - the ticket stands for the caller's principal (client, scopes, token id and expiry) at
          the given resource, and for nothing else;
        - it lasts ``lifetime`` seconds, never beyond the token's own expiry;
        - it is unguessable (the id source's 128 random bits) and redeemable once.
    """

    def __init__(
        self, *, tickets: TicketStore, ids: IdSource, clock: Clock, lifetime: float = 30.0
    ) -> None:
        self._tickets = tickets
        self._ids = ids
        self._clock = clock
        self._lifetime = lifetime

    async def execute(
        self, principal: Principal, command: IssueStreamTicketCommand
    ) -> StreamTicket:
        """Issue a ticket for the caller."""
        require_scope(principal, Scope.SSE)
        now = self._clock.now()
        expires_at = min(now + self._lifetime, principal.expires_at)
        ticket = self._ids.new_id()
        grant = TicketGrant(principal=principal, resource=command.resource, expires_at=expires_at)
        await self._tickets.issue(ticket, grant)
        return StreamTicket(ticket=ticket, expires_in=max(0, int(expires_at - now)))
