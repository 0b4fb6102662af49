"""Stream tickets kept in this process until redeemed or expired."""

from __future__ import annotations

import time
from collections.abc import Callable

from src.application.ports.streams import TicketGrant, TicketStore


class MemoryTicketStore(TicketStore):
    """A dict of ticket to grant; redeeming removes the entry, expired ones are swept as new come.

    Grants are swept in the order they were issued, which is the order they expire in but for
    the few cut short by their token's expiry: those wait for the sweep a little longer, or for
    a redemption that finds them void.

    Args:
        clock: the wall clock grants' expiry is read against (UNIX seconds).
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._grants: dict[str, TicketGrant] = {}
        self._clock = clock

    async def issue(self, ticket: str, grant: TicketGrant) -> None:
        """Keep ``grant`` under ``ticket``."""
        self._sweep(self._clock())
        self._grants[ticket] = grant

    async def redeem(self, ticket: str) -> TicketGrant | None:
        """Take the grant of ``ticket`` (once)."""
        return self._grants.pop(ticket, None)

    def __len__(self) -> int:
        return len(self._grants)

    def _sweep(self, now: float) -> None:
        grants = self._grants
        while grants:
            oldest = next(iter(grants))
            if grants[oldest].expires_at > now:
                return
            del grants[oldest]
