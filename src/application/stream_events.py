"""Use case: follow the events a principal may see, resuming after the last one it saw."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from src.application.errors import StreamEnded
from src.application.ports import Clock, EventBus, EventRecord, Subscription, SubscriptionClosed
from src.application.security import Principal, Scope, require_scope
from src.domain.events import Event, EventType

_CLOSED_MESSAGES = {
    "overflow": "the stream fell too far behind; reconnect with Last-Event-ID to resume",
    "shutdown": "the server is shutting down; reconnect with Last-Event-ID to resume",
    "unavailable": "the event bus is unavailable; reconnect with Last-Event-ID to resume",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEventsCommand:
    """Where to resume from, and which event types to receive (``None``: all)."""

    last_event_id: str | None = None
    types: frozenset[EventType] | None = None


class EventStream:
    """One principal's stream: replayed events, then live ones, until its token expires."""

    __slots__ = ("_clock", "_expires_at", "_subscription")

    def __init__(self, subscription: Subscription, *, expires_at: float, clock: Clock) -> None:
        self._subscription = subscription
        self._expires_at = expires_at
        self._clock = clock

    @property
    def gap(self) -> bool:
        """True when events between the client's last id and the oldest one kept were lost."""
        return self._subscription.gap

    async def next_batch(self, timeout: float) -> Sequence[EventRecord]:
        """Wait up to ``timeout`` seconds for events (an empty batch when none came).

        Raises:
            StreamEnded: the token expired, or the bus ended the subscription.
        """
        remaining = self._expires_at - self._clock.now()
        if remaining <= 0:
            self._subscription.close()
            raise StreamEnded(
                "token_expired",
                "the access token has expired; reconnect with a fresh token and Last-Event-ID",
            )
        try:
            return await self._subscription.next_batch(min(timeout, remaining))
        except SubscriptionClosed as closed:
            message = _CLOSED_MESSAGES.get(closed.reason, "the stream ended")
            raise StreamEnded(closed.reason, message) from None

    def deliver_to(self, sink: Callable[[EventRecord], bool]) -> None:
        """Hand live events straight to ``sink`` (see :meth:`Subscription.deliver_to`).

        Once the token has expired, ``sink`` gets nothing more; events queue until
        :meth:`next_batch` ends the stream.
        """
        clock, expires_at = self._clock, self._expires_at

        def unexpired(record: EventRecord) -> bool:
            return clock.now() < expires_at and sink(record)

        self._subscription.deliver_to(unexpired)

    def wake(self) -> None:
        """Make a waiting :meth:`next_batch` return now."""
        self._subscription.wake()

    def close(self) -> None:
        """Stop following the bus."""
        self._subscription.close()


class StreamEvents:
    """Opens an event stream for a principal.

    Rules:
        - needs the ``sse`` scope;
        - a subscriber sees broadcasts and its own client's calculations, never another client's;
        - optionally only the selected event types;
        - the stream ends when the principal's token expires.
    """

    def __init__(self, *, events: EventBus, clock: Clock) -> None:
        self._events = events
        self._clock = clock

    async def execute(self, principal: Principal, command: StreamEventsCommand) -> EventStream:
        """Subscribe to the bus from the client's last-seen id."""
        require_scope(principal, Scope.SSE)
        client_id, types = principal.client_id, command.types

        def wants(event: Event) -> bool:
            return event.audience.admits(client_id) and (types is None or event.type in types)

        subscription = await self._events.subscribe(after=command.last_event_id, wants=wants)
        return EventStream(subscription, expires_at=principal.expires_at, clock=self._clock)
