"""The one task per process that follows the Redis event stream and fans it out locally."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from src.adapters.fanout import Fanout
from src.adapters.redis.connection import UNAVAILABLE, Backoff
from src.adapters.redis.stream_log import StreamLog, to_record
from src.adapters.redis.wire import id_order

log = logging.getLogger("calcmcp.redis")


class StreamReader:
    """Follows the stream with ``XREAD BLOCK`` from the last id it delivered.

    ``position`` is that id; ``healthy`` whether Redis answers. When the connection is lost,
    every local subscription ends with ``unavailable`` (its client resumes with its last id, on
    this instance or another) and ``epoch`` grows, so a subscribe that straddled the loss can
    tell. The reader then reconnects with exponential back-off and resumes from ``position``:
    what other instances published meanwhile is fanned out, not skipped.

    Args:
        stream: the log to follow.
        fanout: this process's subscribers.
        block: seconds one ``XREAD`` waits for news (below the client's socket timeout).
        batch: most entries one ``XREAD`` returns.
    """

    def __init__(
        self, stream: StreamLog, fanout: Fanout, *, block: float = 2.0, batch: int = 1000
    ) -> None:
        self._stream = stream
        self._fanout = fanout
        self._block_ms = max(1, int(block * 1000))
        self._batch = batch
        self._backoff = Backoff()
        self._settled = asyncio.Event()  # the first connection attempt is over, either way
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._waiters: list[tuple[tuple[int, int], asyncio.Future[None]]] = []
        self.position: str | None = None
        self.healthy = False
        self.epoch = 0

    async def ready(self) -> bool:
        """Start reading if not yet started; whether Redis is reachable (after a first try)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        await self._settled.wait()
        return self.healthy

    async def catch_up(self, target: tuple[int, int]) -> None:
        """Wait until all up to stream id ``target`` has been fanned out (or Redis is lost)."""
        if self.healthy and id_order(self.position) < target:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append((target, waiter))
            await waiter

    def stop(self) -> None:
        """Stop reading (shutdown)."""
        # The flag as well as the cancellation: redis-py has been seen to swallow a cancellation
        # that lands during a blocking read, so the loop also looks before each read.
        self._stopped = True
        self.healthy = False
        if self._task is not None:
            self._task.cancel()
        self._notify()  # nobody waits for a reader that has stopped
        self._settled.set()

    async def wait_stopped(self) -> None:
        """Wait until :meth:`stop` has taken effect."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while not self._stopped:
            try:
                await self._connect()
                await self._follow()
            except UNAVAILABLE:
                self._lost()
            except Exception:  # the task's outermost edge: never die silently
                log.exception("the event stream reader failed; reconnecting")
                self._lost()
            if not self._stopped:
                await self._backoff.sleep()

    async def _connect(self) -> None:
        if self.position is None:  # first start: follow from the newest entry (if any)
            self.position = await self._stream.newest_id()
        else:
            await self._stream.ping()
        if not self.healthy and self.epoch:
            log.info("the event stream is reachable again; resuming after %s", self.position)
        self.healthy = True
        self._backoff.reset()
        self._settled.set()

    async def _follow(self) -> None:
        stream, fanout = self._stream, self._fanout
        while not self._stopped:
            entries = await stream.follow(
                self.position or "0-0", count=self._batch, block_ms=self._block_ms
            )
            for raw_id, fields in entries:
                record = to_record(raw_id, fields)
                self.position = raw_id.decode()
                if record is not None:
                    fanout.deliver(record)
            self._notify()

    def _notify(self) -> None:
        """Wake the :meth:`catch_up` waiters whose target is reached (all, if Redis is lost)."""
        position, waiting = id_order(self.position), []
        for target, waiter in self._waiters:
            if not waiter.done():
                if self.healthy and position < target:
                    waiting.append((target, waiter))
                else:
                    waiter.set_result(None)
        self._waiters = waiting

    def _lost(self) -> None:
        if self._stopped:  # shutting down: the subscriptions have ended already
            return
        if self.healthy:
            log.warning("lost the event stream; its subscriptions end, reconnecting")
        self.healthy = False
        self.epoch += 1
        self._fanout.end_all("unavailable")
        self._notify()
        self._settled.set()
