"""The in-process event bus: a bounded replay log and bounded per-subscriber queues.

Hand-written rather than built on ``asyncio.Queue``: a subscriber here is a deque and at most one
waiting future, a few hundred bytes, because a process may hold ten thousand of them and a publish
must reach them all within milliseconds.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from src.application.ports import EventBus, EventRecord, Subscription, SubscriptionClosed
from src.domain.events import Event


class _Subscriber(Subscription):
    __slots__ = ("_bus", "_closed", "_gap", "_limit", "_pending", "_waiter", "wants")

    def __init__(
        self,
        bus: MemoryEventBus,
        wants: Callable[[Event], bool],
        *,
        limit: int,
        replay: Iterable[EventRecord],
        gap: bool,
    ) -> None:
        self._bus = bus
        self.wants = wants
        self._limit = limit
        self._pending: deque[EventRecord] = deque(r for r in replay if wants(r.event))
        self._waiter: asyncio.Future[None] | None = None
        self._closed: str | None = None
        self._gap = gap

    @property
    def gap(self) -> bool:
        return self._gap

    def push(self, record: EventRecord) -> None:
        """Queue ``record``; past the bound, end this subscription as ``overflow``."""
        if len(self._pending) >= self._limit:
            self.end("overflow")
            return
        self._pending.append(record)
        self._wake()

    def end(self, reason: str) -> None:
        """End this subscription for ``reason`` and wake its reader."""
        if self._closed is None:
            self._closed = reason
            self._bus.forget(self)
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_batch(self, timeout: float) -> Sequence[EventRecord]:
        if not self._pending and self._closed is None:
            await self._wait(timeout)
        if self._closed is not None:  # pending events are dropped: the log still has them
            raise SubscriptionClosed(self._closed)
        batch = tuple(self._pending)
        self._pending.clear()
        return batch

    async def _wait(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(timeout, _resolve, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def close(self) -> None:
        self.end("closed")


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class MemoryEventBus(EventBus):
    """Events kept in this process: a log bounded by count and age, fanned out to subscribers.

    Event ids are ``"<boot>-<sequence>"``: ``boot`` (the bus's creation time in milliseconds) tells
    ids of an earlier process, whose events this log no longer has, from ids of this one.

    Args:
        log_size: most events kept for replay.
        log_age: seconds an event is kept for replay.
        queue_size: most events waiting for one subscriber before it is cut off as too slow.
    """

    def __init__(self, *, log_size: int = 10_000, log_age: float = 3600.0, queue_size: int = 1024):
        self._boot = str(time.time_ns() // 1_000_000)
        self._last = 0
        self._log: deque[tuple[int, float, EventRecord]] = deque(maxlen=log_size)
        self._log_age = log_age
        self._queue_size = queue_size
        self._subscribers: dict[_Subscriber, None] = {}

    async def publish(self, event: Event) -> str:
        sequence = self._last = self._last + 1
        record = EventRecord(f"{self._boot}-{sequence}", event)
        now = time.monotonic()
        self._log.append((sequence, now, record))
        self._expire(now)
        for subscriber in tuple(self._subscribers):
            if subscriber.wants(event):
                subscriber.push(record)
        return record.id

    async def subscribe(self, *, after: str | None, wants: Callable[[Event], bool]) -> Subscription:
        replay: Iterable[EventRecord] = ()
        gap = False
        if after is not None:
            self._expire(time.monotonic())
            replay, gap = self._since(after)
        subscriber = _Subscriber(self, wants, limit=self._queue_size, replay=replay, gap=gap)
        self._subscribers[subscriber] = None
        return subscriber

    def forget(self, subscriber: _Subscriber) -> None:
        """Stop delivering to ``subscriber``."""
        self._subscribers.pop(subscriber, None)

    def close(self) -> None:
        """End every subscription (server shutdown)."""
        for subscriber in tuple(self._subscribers):
            subscriber.end("shutdown")

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscribers)

    def _since(self, after: str) -> tuple[Iterable[EventRecord], bool]:
        """Records after id ``after``; and whether some were lost, or ``after`` is unknown."""
        everything = (record for _, _, record in self._log)
        boot, _, text = after.rpartition("-")
        if boot != self._boot or not text.isdigit() or int(text) > self._last:
            return everything, True
        sequence = int(text)
        first = self._log[0][0] if self._log else self._last + 1
        if sequence < first - 1:
            return everything, True
        return itertools.islice(everything, max(0, sequence - first + 1), None), False

    def _expire(self, now: float) -> None:
        log, horizon = self._log, now - self._log_age
        while log and log[0][1] < horizon:
            log.popleft()
