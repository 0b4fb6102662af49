"""The in-process event bus: a replay log bounded by count and age, fanned out locally."""

from __future__ import annotations

import itertools
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence

from src.adapters.fanout import Fanout
from src.application.ports import NO_METRICS, EventBus, EventRecord, Metrics, Subscription
from src.domain.events import Event

_SEQUENCE = re.compile(r"[0-9]{1,19}")


class MemoryEventBus(EventBus):
    """Events kept in this process: a log bounded by count and age, fanned out to subscribers.

    Event ids are ``"<boot>-<sequence>"``: ``boot`` (the bus's creation time in milliseconds) tells
    ids of an earlier process, whose events this log no longer has, from ids of this one.

    Args:
        log_size: most events kept for replay.
        log_age: seconds an event is kept for replay.
        queue_size: most events waiting for one subscriber before it is cut off as too slow.
        metrics: where publications, deliveries, replays and cut-offs are counted.
    """

    def __init__(
        self,
        *,
        log_size: int = 10_000,
        log_age: float = 3600.0,
        queue_size: int = 1024,
        metrics: Metrics = NO_METRICS,
    ):
        self._boot = str(time.time_ns() // 1_000_000)
        self._last = 0
        self._log: deque[tuple[int, float, EventRecord]] = deque(maxlen=log_size)
        self._log_age = log_age
        self._fanout = Fanout(queue_size=queue_size, metrics=metrics)
        self._metrics = metrics
        self._closed = False

    async def publish(self, event: Event) -> str:
        sequence = self._last = self._last + 1
        record = EventRecord(f"{self._boot}-{sequence}", event)
        now = time.monotonic()
        self._log.append((sequence, now, record))
        self._expire(now)
        self._metrics.events_published()
        self._fanout.deliver(record)
        return record.id

    async def subscribe(self, *, after: str | None, wants: Callable[[Event], bool]) -> Subscription:
        replay: Iterable[EventRecord] = ()
        gap = False
        if after is not None:
            self._expire(time.monotonic())
            replay, gap = self._since(after)
        subscriber = self._fanout.add(wants, replay, gap)
        if self._closed:  # shutting down: the subscriber learns it at once
            subscriber.end("shutdown")
        return subscriber

    async def recent(self, *, limit: int, wants: Callable[[Event], bool]) -> Sequence[EventRecord]:
        """The newest ``limit`` matching events, oldest first."""
        self._expire(time.monotonic())
        found: list[EventRecord] = []
        for _, _, record in reversed(self._log):
            if len(found) >= limit:
                break
            if wants(record.event):
                found.append(record)
        return found[::-1]

    def close(self) -> None:
        """End every subscription, now and from now on (server shutdown)."""
        self._closed = True
        self._fanout.end_all("shutdown")

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are open."""
        return len(self._fanout)

    def _since(self, after: str) -> tuple[Iterable[EventRecord], bool]:
        """Records after id ``after``; and whether some were lost, or ``after`` is unknown."""
        everything = (record for _, _, record in self._log)
        boot, _, text = after.rpartition("-")
        if boot != self._boot or not _SEQUENCE.fullmatch(text) or int(text) > self._last:
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
