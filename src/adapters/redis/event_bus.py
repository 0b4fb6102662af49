"""The event bus on a Redis stream: one replay log for every process, followed by one task each."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from redis.asyncio import Redis

from src.adapters.fanout import Fanout, LocalSubscriber
from src.adapters.redis.connection import DEFAULT_PREFIX, UNAVAILABLE, unavailable
from src.adapters.redis.reader import StreamReader
from src.adapters.redis.stream_log import StreamLog
from src.adapters.redis.wire import encode_event, id_order
from src.application.ports import NO_METRICS, EventBus, EventRecord, Metrics, Subscription
from src.domain.events import Event


class _Collect:
    """A sink that keeps every live event handed to it (see :meth:`RedisEventBus.subscribe`)."""

    __slots__ = ("records",)

    def __init__(self) -> None:
        self.records: list[EventRecord] = []

    def __call__(self, record: EventRecord) -> bool:
        self.records.append(record)
        return True


class RedisEventBus(EventBus):
    """Events in a Redis stream, bounded by count and age, fanned out by one reader per process.

    Event ids are the stream's ids (``<ms>-<seq>``), the same in every process, so a subscriber
    resumes on any instance. Trimming is approximate by default (Redis drops whole nodes of about
    a hundred entries), so the log may keep a little more than its bounds; the age bound is
    applied as events are published.

    Args:
        redis: the client (see :func:`~src.adapters.redis.connect`).
        prefix: the prefix of every key.
        log_size: most events kept for replay.
        log_age: seconds an event is kept for replay.
        queue_size: most events waiting for one subscriber before it is cut off as too slow.
        exact_trim: trim to the exact bounds (costlier; for tests of the bounds).
        block: seconds the reader's ``XREAD`` waits for news.
        metrics: where publications (by this process), and this process's deliveries, replays
            and cut-offs, are counted.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        log_size: int = 10_000,
        log_age: float = 3600.0,
        queue_size: int = 1024,
        exact_trim: bool = False,
        block: float = 2.0,
        metrics: Metrics = NO_METRICS,
    ) -> None:
        self._log = StreamLog(
            redis, f"{prefix}events", log_size=log_size, log_age=log_age, exact_trim=exact_trim
        )
        self._fanout = Fanout(queue_size=queue_size, metrics=metrics)
        self._metrics = metrics
        self._reader = StreamReader(self._log, self._fanout, block=block)
        self._closed = False

    async def publish(self, event: Event) -> str:
        """Append ``event`` to the stream; this process's reader delivers it like any other.

        Raises:
            ServiceUnavailable: Redis cannot be reached; the event is not acknowledged.
        """
        with unavailable("the event bus"):
            event_id = await self._log.append(encode_event(event))
        self._metrics.events_published()
        return event_id

    async def subscribe(self, *, after: str | None, wants: Callable[[Event], bool]) -> Subscription:
        """Replayed events after ``after``, then live ones; ended at once if Redis is down.

        A probe joins the live fan-out before the replay is read, collecting what the reader
        delivers meanwhile; once the reader has caught up with the replay's end (it may lag
        behind the read), the subscriber is handed the replay, then what the probe caught past
        the replay's end, and the reader delivers the rest. Nothing published around the join
        is lost, and nothing is delivered twice.
        """
        if self._closed:
            return self._ended(wants, "shutdown")
        if not await self._reader.ready():
            return self._ended(wants, "shutdown" if self._closed else "unavailable")
        if after is None:
            return self._fanout.add(wants)
        epoch, live = self._reader.epoch, _Collect()
        probe = self._fanout.add(wants)
        probe.deliver_to(live)
        try:
            replay, last, gap = await self._log.since(after)
            await self._reader.catch_up(last)
        except UNAVAILABLE:
            return self._ended(wants, "unavailable")
        finally:
            probe.close()
        fresh = [r for r in live.records if id_order(r.id) > last]
        subscriber = self._fanout.add(wants, [*replay, *fresh], gap)
        if self._closed:
            subscriber.end("shutdown")
        elif self._reader.epoch != epoch:  # the live feed broke during the replay: start over
            subscriber.end("unavailable")
        return subscriber

    async def recent(self, *, limit: int, wants: Callable[[Event], bool]) -> Sequence[EventRecord]:
        """The newest ``limit`` matching events, oldest first."""
        with unavailable("the event bus"):
            return await self._log.newest(limit, wants)

    def close(self) -> None:
        """End every subscription, now and from now on, and stop reading (server shutdown)."""
        self._closed = True
        self._fanout.end_all("shutdown")
        self._reader.stop()

    async def aclose(self) -> None:
        """:meth:`close`, and wait for the reader to stop."""
        self.close()
        await self._reader.wait_stopped()

    @property
    def subscriber_count(self) -> int:
        """How many subscriptions are open in this process."""
        return len(self._fanout)

    def _ended(self, wants: Callable[[Event], bool], reason: str) -> LocalSubscriber:
        subscriber = self._fanout.add(wants)
        subscriber.end(reason)
        return subscriber
