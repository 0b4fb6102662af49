"""Use case: follow the events a principal may see, resuming after the last one it saw."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from src.application.errors import ServiceUnavailable, StreamEnded
from src.application.ports import (
    Clock,
    EventBus,
    EventRecord,
    RevocationList,
    Subscription,
    SubscriptionClosed,
)
from src.application.ports.streams import StreamSlots
from src.application.security import Principal, Scope, require_scope
from src.domain.events import Event, EventType

_CLOSED_MESSAGES = {
    "overflow": "the stream fell too far behind; reconnect with Last-Event-ID to resume",
    "shutdown": "the server is shutting down; reconnect with Last-Event-ID to resume",
    "unavailable": "the event bus is unavailable; reconnect with Last-Event-ID to resume",
}
_EXPIRED = "the access token has expired; reconnect with a fresh token and Last-Event-ID"
_REVOKED = "the access token has been revoked; reconnect with a fresh token and Last-Event-ID"
_SLACK = 0.01
"""Seconds: a wait this close to its end is over (timers may fire a little early)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamEventsCommand:
    """Where to resume from, and which event types to receive (``None``: all)."""

    last_event_id: str | None = None
    types: frozenset[EventType] | None = None


class _Wants:
    """Which events a subscriber receives: those its client may see, of the selected types.

    A small object rather than a closure: a process holds one per open stream.
    """

    __slots__ = ("_client_id", "_types")

    def __init__(self, client_id: str, types: frozenset[EventType] | None) -> None:
        self._client_id = client_id
        self._types = types

    def __call__(self, event: Event) -> bool:
        types = self._types
        return event.audience.admits(self._client_id) and (types is None or event.type in types)


class EventStream:
    """One principal's stream: replayed events, then live ones, while its token is good."""

    __slots__ = (
        "_check_every",
        "_clock",
        "_principal",
        "_released",
        "_revocations",
        "_sink",
        "_slots",
        "_subscription",
        "_woken",
    )

    def __init__(
        self,
        subscription: Subscription,
        *,
        principal: Principal,
        clock: Clock,
        revocations: RevocationList,
        slots: StreamSlots,
        check_every: float,
    ) -> None:
        self._subscription = subscription
        self._principal = principal
        self._clock = clock
        self._revocations = revocations
        self._slots = slots
        self._check_every = check_every
        self._released = False
        self._woken = False
        self._sink: Callable[[EventRecord], bool] | None = None

    @property
    def gap(self) -> bool:
        """True when events between the client's last id and the oldest one kept were lost."""
        return self._subscription.gap

    async def next_batch(self, timeout: float) -> Sequence[EventRecord]:
        """Wait up to ``timeout`` seconds for events (an empty batch when none came, or woken).

        The token is checked before the wait and at least every ``check_every`` seconds of it.

        Raises:
            StreamEnded: the token expired or was revoked, or the bus ended the subscription.
        """
        deadline = time.monotonic() + timeout
        self._woken = False  # a wake before this call woke nothing: its caller saw to it
        while True:
            remaining = await self._check_token()
            wait = min(deadline - time.monotonic(), self._check_every, remaining)
            try:
                batch = await self._subscription.next_batch(max(0.0, wait))
            except SubscriptionClosed as closed:
                self.close()
                message = _CLOSED_MESSAGES.get(closed.reason, "the stream ended")
                raise StreamEnded(closed.reason, message) from None
            if batch or self._woken or time.monotonic() >= deadline - _SLACK:
                self._woken = False
                return batch

    async def _check_token(self) -> float:
        """Seconds the token has left; ends the stream if it has expired or been revoked."""
        principal = self._principal
        remaining = principal.expires_at - self._clock.now()
        if remaining <= 0:
            self.close()
            raise StreamEnded("token_expired", _EXPIRED)
        try:
            revoked = await self._revocations.is_revoked(principal.token_id)
        except ServiceUnavailable:
            self.close()
            raise StreamEnded("unavailable", _CLOSED_MESSAGES["unavailable"]) from None
        if revoked:
            self.close()
            raise StreamEnded("revoked", _REVOKED)
        return remaining

    def deliver_to(self, sink: Callable[[EventRecord], bool]) -> None:
        """Hand live events straight to ``sink`` (see :meth:`Subscription.deliver_to`).

        Once the token has expired, ``sink`` gets nothing more; events queue until
        :meth:`next_batch` ends the stream.
        """
        self._sink = sink
        self._subscription.deliver_to(self._deliver)

    def _deliver(self, record: EventRecord) -> bool:
        sink = self._sink
        return sink is not None and self._clock.now() < self._principal.expires_at and sink(record)

    def wake(self) -> None:
        """Make a waiting :meth:`next_batch` return now."""
        self._woken = True
        self._subscription.wake()

    def close(self) -> None:
        """Stop following the bus and give the stream's slot back. Idempotent."""
        self._subscription.close()
        if not self._released:
            self._released = True
            self._slots.release(self._principal.client_id)


class StreamEvents:
    """Opens an event stream for a principal.

    Rules:
        - needs the ``sse`` scope;
        - at most so many streams per client and in total (the slots' limits), else
          :class:`TooManyStreams`; a stream's slot is given back when it is closed;
        - a subscriber sees broadcasts and its own client's calculations, never another client's;
        - optionally only the selected event types;
        - the stream ends when the principal's token expires or is revoked (checked at least
          every ``check_every`` seconds).
    """

    def __init__(
        self,
        *,
        events: EventBus,
        clock: Clock,
        slots: StreamSlots,
        revocations: RevocationList,
        check_every: float = 5.0,
    ) -> None:
        self._events = events
        self._clock = clock
        self._slots = slots
        self._revocations = revocations
        self._check_every = check_every

    async def execute(self, principal: Principal, command: StreamEventsCommand) -> EventStream:
        """Take a slot and subscribe to the bus from the client's last-seen id.

        The caller must :meth:`EventStream.close` the stream however it ends.
        """
        require_scope(principal, Scope.SSE)
        client_id = principal.client_id
        await self._slots.acquire(client_id)
        try:
            subscription = await self._events.subscribe(
                after=command.last_event_id, wants=_Wants(client_id, command.types)
            )
        except BaseException:
            self._slots.release(client_id)
            raise
        return EventStream(
            subscription,
            principal=principal,
            clock=self._clock,
            revocations=self._revocations,
            slots=self._slots,
            check_every=self._check_every,
        )
