"""The Redis stream as a replay log: appended to with bounds, read after an id or newest first."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import cast

from redis.asyncio import Redis

from src.adapters.redis.wire import decode_event, parse_stream_id
from src.application.ports import EventRecord
from src.domain.errors import DomainError
from src.domain.events import Event

log = logging.getLogger("calcmcp.redis")

# Appends events and trims the log by count and by age in one atomic step (nothing partial).
# Each entry keeps the id of the one before it ("p"): trimming leaves no other trace, and that is
# how a resume from the id just before the oldest kept entry is told from one that lost events.
# The age bound is measured on the stream's own clock (the newest id), not on any process's.
# ARGV: MAXLEN's operator, MAXLEN, the age in ms, then one payload per event, in order.
_APPEND = """
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local previous = newest[1] and newest[1][1] or '0-0'
local ids = {}
local trim, size = ARGV[1], ARGV[2]
for i = 4, #ARGV do
  previous = redis.call('XADD', KEYS[1], 'MAXLEN', trim, size, '*', 'e', ARGV[i], 'p', previous)
  ids[#ids + 1] = previous
end
local ms = tonumber(string.match(previous, '^(%d+)'))
redis.call('XTRIM', KEYS[1], 'MINID', trim, string.format('%.0f', math.max(0, ms - ARGV[3])))
return ids
"""
MAX_BATCH = 256
"""Most events one append script writes: bounds the time Redis spends in one script."""

Entries = list[tuple[bytes, dict[bytes, bytes]]]
Since = tuple[list[EventRecord], tuple[int, int], bool]


class StreamLog:
    """One stream key: appends trimmed to ``log_size`` entries and ``log_age`` seconds.

    Appends are group-committed: while one script is on its way to Redis, the events published
    meanwhile wait, then go together in the next (at most :data:`MAX_BATCH`), in the order they
    were published. A lone publisher pays one round trip as before; many at once share one round
    trip and one script, where each used to queue behind the others' (this is what lets Redis
    keep up with every worker's calculation events). Each event is acknowledged only once the
    script that wrote it has answered; if it fails, every event it carried fails with it.

    Redis errors are left to the caller. Trimming is approximate unless ``exact_trim``: Redis
    then drops whole nodes (about a hundred entries), so the log may keep a little more.
    """

    def __init__(
        self, redis: Redis, key: str, *, log_size: int, log_age: float, exact_trim: bool
    ) -> None:
        self._redis = redis
        self._key = key
        self._trim = ("=" if exact_trim else "~", log_size, int(log_age * 1000))
        self._append = redis.register_script(_APPEND)
        self._waiting: list[tuple[bytes, asyncio.Future[str]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, payload: bytes) -> str:
        """Add an entry; its id (once Redis has written it)."""
        written: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting.append((payload, written))
        if self._writer is None:
            self._writer = asyncio.ensure_future(self._write())
        return await written

    async def _write(self) -> None:
        """Send what waits, a batch at a time, until nothing does."""
        try:
            while self._waiting:
                batch = self._waiting[:MAX_BATCH]
                del self._waiting[:MAX_BATCH]
                try:
                    ids = await self._append(
                        keys=[self._key], args=[*self._trim, *(payload for payload, _ in batch)]
                    )
                except Exception as error:  # every event of the batch fails with it
                    for _, written in batch:
                        if not written.done():
                            written.set_exception(error)
                    continue
                except BaseException:  # cancelled: whether Redis wrote them is unknown
                    for _, written in batch:
                        written.cancel()
                    raise
                for (_, written), event_id in zip(batch, ids, strict=True):
                    if not written.done():  # its publisher may have given up waiting
                        written.set_result(
                            event_id.decode() if isinstance(event_id, bytes) else str(event_id)
                        )
        finally:
            self._writer = None
            for _, written in self._waiting:  # cancelled (the loop is closing): none written
                if not written.done():
                    written.cancel()
            self._waiting.clear()

    async def since(self, after: str) -> Since:
        """Records after ``after``, the id of the last entry read, and whether some were lost.

        Lost means ``after`` is older than the log, from the future, from another stream (say,
        one Redis lost and started anew) or not an id at all; the whole log is returned then.
        """
        start = parse_stream_id(after)
        if start is not None:
            entries = _entries(await self._redis.xrange(self._key, min=f"{start[0]}-{start[1]}"))
            if entries and parse_stream_id(entries[0][0].decode()) == start:  # still kept
                return _records(entries[1:]), _last(entries, start), False
            previous = entries[0][1].get(b"p", b"") if entries else b""
            if parse_stream_id(previous.decode()) == start:  # the one before the oldest kept
                return _records(entries), _last(entries, start), False
        everything = _entries(await self._redis.xrange(self._key))
        return _records(everything), _last(everything, (0, 0)), True

    async def newest(self, limit: int, wants: Callable[[Event], bool]) -> list[EventRecord]:
        """The newest ``limit`` records ``wants`` accepts, oldest first, read in pages."""
        found: list[EventRecord] = []
        upper, page_size = "+", max(limit, 100)
        while len(found) < limit:
            page = _entries(await self._redis.xrevrange(self._key, max=upper, count=page_size))
            for record in _records(page):
                if wants(record.event) and len(found) < limit:
                    found.append(record)
            if len(page) < page_size:
                break
            upper = f"({page[-1][0].decode()}"  # exclusive: the next page starts below it
        return found[::-1]

    async def newest_id(self) -> str:
        """The id of the newest entry, or ``0-0`` when there is none."""
        newest = _entries(await self._redis.xrevrange(self._key, count=1))
        return newest[0][0].decode() if newest else "0-0"

    async def follow(self, position: str, *, count: int, block_ms: int) -> Entries:
        """Entries after ``position``, waiting up to ``block_ms`` for one (maybe none)."""
        reply = await self._redis.xread({self._key: position}, count=count, block=block_ms)
        streams = cast("list[tuple[bytes, Entries]]", reply or [])
        return [entry for _, entries in streams for entry in entries]

    async def ping(self) -> None:
        """Check that Redis answers."""
        await self._redis.ping()


def to_record(raw_id: bytes, fields: Mapping[bytes, bytes]) -> EventRecord | None:
    """The event of a stream entry, or ``None`` (logged) if this adapter did not write it."""
    event_id = raw_id.decode()
    try:
        return EventRecord(event_id, decode_event(fields[b"e"]))
    except (KeyError, ValueError, DomainError):
        log.warning("skipping stream entry %s: not an event this adapter wrote", event_id)
        return None


def _entries(reply: object) -> Entries:
    # redis-py types replies loosely (str or bytes, maybe None); without decode_responses,
    # a stream range is this
    return cast("Entries", reply or [])


def _records(entries: Entries) -> list[EventRecord]:
    return [r for raw_id, fields in entries if (r := to_record(raw_id, fields)) is not None]


def _last(entries: Entries, default: tuple[int, int]) -> tuple[int, int]:
    return (parse_stream_id(entries[-1][0].decode()) or default) if entries else default
