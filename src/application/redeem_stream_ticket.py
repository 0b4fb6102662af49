"""Use case: turn a stream ticket back into the principal it was issued to, once."""

from __future__ import annotations

from dataclasses import dataclass

from src.application.errors import InvalidTicket
from src.application.ports import Clock, RevocationList
from src.application.ports.streams import TicketStore
from src.application.security import Principal

_UNKNOWN = "the ticket is unknown or has already been used; get a new one from POST /events/ticket"
_EXPIRED = "the ticket has expired; get a new one from POST /events/ticket"


@dataclass(frozen=True, slots=True, kw_only=True)
class RedeemStreamTicketCommand:
    """A ticket as presented, and the resource it is presented at."""

    ticket: str
    resource: str


class RedeemStreamTicket:
    """Establishes who is opening a stream with a ticket instead of a bearer token.

    Rules:
        - a ticket is redeemed at most once, whatever the outcome;
        - it must not have expired, must be presented at the resource it was issued for, and
          its token must not have been revoked since, else :class:`InvalidTicket`.
    """

    def __init__(self, *, tickets: TicketStore, revocations: RevocationList, clock: Clock) -> None:
        self._tickets = tickets
        self._revocations = revocations
        self._clock = clock

    async def execute(self, command: RedeemStreamTicketCommand) -> Principal:
        """Redeem the ticket and return its principal."""
        grant = await self._tickets.redeem(command.ticket) if command.ticket else None
        if grant is None:
            raise InvalidTicket(_UNKNOWN)
        now = self._clock.now()
        if now >= grant.expires_at or now >= grant.principal.expires_at:
            raise InvalidTicket(_EXPIRED)
        if grant.resource != command.resource:
            raise InvalidTicket("the ticket is not meant for this resource")
        if await self._revocations.is_revoked(grant.principal.token_id):
            raise InvalidTicket("the ticket's access token has been revoked")
        return grant.principal
