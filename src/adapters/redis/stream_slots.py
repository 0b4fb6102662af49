"""Open event streams counted across every process, in leases that lapse if a process dies."""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from redis.asyncio import Redis

from src.adapters.redis.connection import DEFAULT_PREFIX, UNAVAILABLE, Backoff, unavailable
from src.adapters.redis.slot_scripts import ACQUIRE, WRITE
from src.application.errors import TooManyStreams
from src.application.ports.streams import StreamSlots


class RedisStreamSlots(StreamSlots):
    """Each process writes what it holds to a hash of its own that lives ``lease`` seconds.

    The hash (``c:<client>`` fields and a ``total``) is refreshed every third of the lease
    while the process lives; a process that dies takes its slots with it when the lease lapses,
    and nothing is left to leak. Acquiring sums the other processes' hashes with this process's
    own counts, atomically in a script, so no limit is passed however many instances race.

    This process's counts are kept here and are the truth the hash mirrors: :meth:`release`
    lowers them at once (its own acquires see that immediately) and a background task writes
    the new counts, absolute values rather than decrements, so a lost or repeated write corrects
    itself with the next one. Writes are serialized by a lock, each with the counts of its time.

    Args:
        redis: the client.
        max_streams: most streams open at once in all processes together.
        max_per_client: most streams one client may have open at once, in all processes.
        retry_after: seconds a refused client is told to wait.
        prefix: the prefix of every key.
        lease: seconds a dead process's slots outlive it.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        max_streams: int,
        max_per_client: int,
        retry_after: float = 5.0,
        prefix: str = DEFAULT_PREFIX,
        lease: float = 30.0,
    ) -> None:
        holder = secrets.token_hex(8)
        self._limits = (max_per_client, max_streams)
        self._retry_after = retry_after
        self._lease_ms = max(1, int(lease * 1000))
        self._keys = [f"{prefix}slots:holders", f"{prefix}slots:held:{holder}"]
        self._ids = [f"{prefix}slots:held:", holder]
        self._acquire = redis.register_script(ACQUIRE)
        self._write = redis.register_script(WRITE)
        self._counts: dict[str, int] = {}
        self._total = 0
        self._dirty: set[str] = set()
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def acquire(self, client_id: str) -> None:
        """Count one more stream of ``client_id``, or refuse.

        Raises:
            TooManyStreams: a limit is reached (nothing taken).
            ServiceUnavailable: Redis cannot be reached (nothing taken).
        """
        async with self._lock:
            held = self._counts.get(client_id, 0) + 1
            args: list[str | int] = [*self._ids, f"c:{client_id}", held, self._total + 1]
            try:
                with unavailable("stream accounting"):
                    refused = await self._acquire(
                        keys=self._keys[:1], args=[*args, *self._limits, self._lease_ms]
                    )
            except BaseException:
                self._mark(client_id)  # the script may have run: write the true count again
                raise
        if refused:
            raise TooManyStreams(self._retry_after, per_client=refused == 1)
        self._counts[client_id] = self._counts.get(client_id, 0) + 1
        self._total += 1
        self._mark(None)

    def release(self, client_id: str) -> None:
        """Count one stream of ``client_id`` fewer; Redis learns it in the background."""
        held = self._counts.get(client_id, 0)
        if held <= 0:
            return
        if held == 1:
            del self._counts[client_id]
        else:
            self._counts[client_id] = held - 1
        self._total -= 1
        self._mark(client_id)

    async def aclose(self) -> None:
        """Stop writing and give back every slot this process holds (it is going away)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._counts.clear()
        self._total = 0
        with contextlib.suppress(*UNAVAILABLE):
            await self._flush(everything=True)

    def _mark(self, client_id: str | None) -> None:
        """Note ``client_id``'s count to be written, and make sure the writer runs."""
        if client_id is not None:
            self._dirty.add(client_id)
            self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        """Write changed counts as they come, and everything every third of the lease."""
        backoff, heartbeat = Backoff(), self._lease_ms / 3000
        loop = asyncio.get_running_loop()
        beat_at = loop.time() + heartbeat
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(beat_at):
                    await self._wake.wait()
            self._wake.clear()
            everything = loop.time() >= beat_at
            try:
                await self._flush(everything=everything)
            except UNAVAILABLE:
                self._wake.set()  # try again after the pause
                await backoff.sleep()
                continue
            backoff.reset()
            if everything:
                beat_at = loop.time() + heartbeat

    async def _flush(self, *, everything: bool) -> None:
        async with self._lock:
            clients = list(self._counts) if everything else list(self._dirty)
            self._dirty.clear()
            counts = [x for c in clients for x in (f"c:{c}", self._counts.get(c, 0))]
            args = [self._ids[1], self._lease_ms, int(everything), self._total, *counts]
            try:
                await self._write(keys=self._keys, args=args)
            except BaseException:
                self._dirty.update(clients)
                raise
