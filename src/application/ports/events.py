"""The event bus: a bounded, ordered replay log with live fan-out to subscribers.

Event ids are opaque strings the bus assigns, ordered by publication; a subscriber hands the last
id it saw back to ``subscribe`` to be replayed what it missed. An in-process log and a Redis
stream both fit this shape.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from src.domain.events import Event


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event as published: its bus-assigned id and the event itself."""

    id: str
    event: Event


class SubscriptionClosed(Exception):
    """The bus ended a subscription.

    ``reason`` is ``"overflow"`` (the subscriber fell too far behind; resume from the last id it
    saw), ``"shutdown"`` (the server is stopping) or ``"unavailable"`` (the bus lost its backend).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Subscription(Protocol):
    """One subscriber's view of the bus: replayed events first, then live ones."""

    @property
    def gap(self) -> bool:
        """True when the requested last id was older than the log (or unknown): events were lost."""
        ...

    async def next_batch(self, timeout: float) -> Sequence[EventRecord]:
        """Wait up to ``timeout`` seconds for events; an empty batch means none came.

        Raises:
            SubscriptionClosed: the bus ended this subscription.
        """
        ...

    def deliver_to(self, sink: Callable[[EventRecord], bool]) -> None:
        """Hand live events straight to ``sink`` as they are published, when nothing is queued.

        ``sink`` returns ``False`` when it cannot take an event at that moment; the event is then
        queued for :meth:`next_batch`, as are all events while others are queued (order holds).
        """
        ...

    def wake(self) -> None:
        """Make a waiting :meth:`next_batch` return now (with whatever is queued, maybe nothing)."""
        ...

    def close(self) -> None:
        """Stop receiving events. Idempotent."""
        ...


class EventBus(Protocol):
    """Publishes events and lets subscribers follow them, resuming from a last-seen id."""

    async def publish(self, event: Event) -> str:
        """Append ``event`` to the log, deliver it to matching subscribers, return its id."""
        ...

    async def subscribe(self, *, after: str | None, wants: Callable[[Event], bool]) -> Subscription:
        """Follow the bus from just after ``after`` (or from now, when ``None``).

        Args:
            after: the last event id the subscriber saw, if it is resuming.
            wants: which events this subscriber receives; applied to replayed and live events.
        """
        ...

    async def recent(self, *, limit: int, wants: Callable[[Event], bool]) -> Sequence[EventRecord]:
        """The newest ``limit`` events in the log that ``wants`` accepts, oldest first."""
        ...
