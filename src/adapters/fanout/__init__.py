"""Fan-out of published events to the subscribers in this process.

Shared by every event-bus adapter (in-memory, Redis): whatever carries events between processes,
each process delivers them to its own subscribers the same way.

Hand-written rather than built on ``asyncio.Queue`` and ``asyncio.wait_for``: a subscriber here is
a list, one future at a time and a slot in a shared deadline bucket, a few hundred bytes, because a
process holds ten thousand of them and one publish must reach them all within milliseconds. A timer
per wait (what ``wait_for`` does) costs more than the delivery itself at that scale.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Sequence

from src.application.ports import NO_METRICS, EventRecord, Metrics, Subscription, SubscriptionClosed
from src.domain.events import Event

DEADLINE_RESOLUTION = 0.05
"""Seconds: waits ending within the same slice share one timer."""


class Deadlines:
    """Wakes waiting subscribers when their timeouts pass, one timer per time slice."""

    __slots__ = ("_buckets",)

    def __init__(self) -> None:
        self._buckets: dict[float, set[LocalSubscriber]] = {}

    def add(self, subscriber: LocalSubscriber, timeout: float) -> float:
        """Wake ``subscriber`` after about ``timeout`` seconds; returns the slot to discard."""
        loop = asyncio.get_running_loop()
        slot = math.ceil((loop.time() + timeout) / DEADLINE_RESOLUTION) * DEADLINE_RESOLUTION
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = set()
            loop.call_at(slot, self._fire, slot)
        bucket.add(subscriber)
        return slot

    def discard(self, subscriber: LocalSubscriber, slot: float) -> None:
        """Forget a deadline that is no longer needed."""
        bucket = self._buckets.get(slot)
        if bucket is not None:
            bucket.discard(subscriber)

    def _fire(self, slot: float) -> None:
        for subscriber in self._buckets.pop(slot, ()):
            subscriber.wake()


class LocalSubscriber(Subscription):
    """One subscriber: a bounded queue of records and at most one waiting reader."""

    __slots__ = (
        "_base_limit",
        "_closed",
        "_deadlines",
        "_gap",
        "_limit",
        "_owner",
        "_pending",
        "_sink",
        "_waiter",
        "wants",
    )

    def __init__(
        self,
        *,
        wants: Callable[[Event], bool],
        limit: int,
        deadlines: Deadlines,
        owner: Fanout,
        replay: Iterable[EventRecord] = (),
        gap: bool = False,
    ) -> None:
        self.wants = wants
        self._deadlines = deadlines
        self._owner = owner
        # a list, not a deque: an empty deque is a 760-byte block, and most subscribers keep
        # nothing queued (events go straight to the socket); a batch takes everything at once
        self._pending: list[EventRecord] = [r for r in replay if wants(r.event)]
        # the replay does not count against the bound until it has been read
        self._base_limit = limit
        self._limit = limit + len(self._pending)
        self._waiter: asyncio.Future[None] | None = None
        self._closed: str | None = None
        self._gap = gap
        self._sink: Callable[[EventRecord], bool] | None = None

    @property
    def gap(self) -> bool:
        """Whether events were lost between the requested id and the replay."""
        return self._gap

    def deliver_to(self, sink: Callable[[EventRecord], bool]) -> None:
        """Hand live events to ``sink`` directly while nothing is queued."""
        self._sink = sink

    def push(self, record: EventRecord) -> bool:
        """Deliver or queue ``record``; past the bound, end this subscription as ``overflow``
        (and return ``False``: the record, and all queued, are dropped)."""
        sink = self._sink
        if not self._pending and sink is not None and self._closed is None and sink(record):
            return True
        if len(self._pending) >= self._limit:
            if self._closed is None:
                self._owner.cut_off(len(self._pending) + 1)
            self.end("overflow")
            return False
        self._pending.append(record)
        self.wake()
        return True

    def end(self, reason: str) -> None:
        """End this subscription for ``reason`` and wake its reader."""
        if self._closed is None:
            self._closed = reason
            self._owner.forget(self)
            self.wake()

    def wake(self) -> None:
        """Let the waiting reader, if any, look again."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_batch(self, timeout: float) -> Sequence[EventRecord]:
        """Everything queued, waiting up to ``timeout`` seconds for something."""
        if not self._pending and self._closed is None:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            slot = self._deadlines.add(self, timeout)
            try:
                await waiter
            finally:
                self._deadlines.discard(self, slot)
                self._waiter = None
        if self._closed is not None:  # pending events are dropped: the log still has them
            raise SubscriptionClosed(self._closed)
        if not self._pending:
            return ()
        batch, self._pending = self._pending, []
        self._limit = self._base_limit
        return batch

    def close(self) -> None:
        """Stop receiving events."""
        self.end("closed")


class Fanout:
    """The subscribers of this process, and delivery of each record to those who want it."""

    __slots__ = ("_deadlines", "_metrics", "_queue_size", "_subscribers")

    def __init__(self, *, queue_size: int, metrics: Metrics = NO_METRICS) -> None:
        self._queue_size = queue_size
        self._metrics = metrics
        self._deadlines = Deadlines()
        self._subscribers: dict[LocalSubscriber, None] = {}

    def add(
        self, wants: Callable[[Event], bool], replay: Iterable[EventRecord] = (), gap: bool = False
    ) -> LocalSubscriber:
        """A new subscriber, first handed ``replay`` (filtered by ``wants``)."""
        subscriber = LocalSubscriber(
            wants=wants,
            limit=self._queue_size,
            deadlines=self._deadlines,
            owner=self,
            replay=replay,
            gap=gap,
        )
        self._subscribers[subscriber] = None
        if subscriber._pending:
            self._metrics.events_replayed(len(subscriber._pending))
        return subscriber

    def deliver(self, record: EventRecord) -> None:
        """Queue ``record`` for every subscriber that wants it (counted once, not per
        subscriber: this loop is the fan-out's whole cost)."""
        event = record.event
        delivered = 0
        for subscriber in tuple(self._subscribers):
            if subscriber.wants(event):
                delivered += subscriber.push(record)
        if delivered:
            self._metrics.events_delivered(delivered)

    def end_all(self, reason: str) -> None:
        """End every subscription (shutdown, or the bus lost its backend)."""
        for subscriber in tuple(self._subscribers):
            subscriber.end(reason)

    def __len__(self) -> int:
        return len(self._subscribers)

    def cut_off(self, dropped: int) -> None:
        """A subscriber is being cut off as too slow; ``dropped`` events will not reach it."""
        self._metrics.subscriber_cut_off(dropped)

    def forget(self, subscriber: LocalSubscriber) -> None:
        """Stop delivering to ``subscriber`` (it has ended)."""
        self._subscribers.pop(subscriber, None)
