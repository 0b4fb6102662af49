"""Use case: send a message to every subscriber."""

from __future__ import annotations

from dataclasses import dataclass

from src.application.ports import Clock, EventBus
from src.application.security import Principal, Scope, require_scope
from src.domain.events import MessageBroadcast


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastCommand:
    """The message to broadcast."""

    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BroadcastReceipt:
    """Proof of publication: the event's id in the log."""

    event_id: str


class Broadcast:
    """Broadcasts a message.

    Rules:
        - needs the ``sse`` scope;
        - the message must be non-empty and within the domain's length bound;
        - every subscriber sees it, whichever client it acts for.
    """

    def __init__(self, *, events: EventBus, clock: Clock) -> None:
        self._events = events
        self._clock = clock

    async def execute(self, principal: Principal, command: BroadcastCommand) -> BroadcastReceipt:
        """Publish the message and return its event id."""
        require_scope(principal, Scope.SSE)
        event = MessageBroadcast(
            message=command.message, sender=principal.client_id, occurred_at=self._clock.now()
        )
        return BroadcastReceipt(event_id=await self._events.publish(event))
