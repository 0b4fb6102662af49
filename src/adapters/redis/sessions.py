"""Protocol sessions in Redis: any instance serves any session and replays its streams."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from src.adapters.redis.connection import DEFAULT_PREFIX, unavailable
from src.application.ports import Session, SessionStore, StreamMessage

# Keeps a stream message if the session exists, capped to the newest ARGV[3]; the global counter
# numbers messages whether kept or not, as the in-memory store does. An element is "<n> <payload>":
# the stream id is in the key, so the event id "<stream>/<n>" is rebuilt from it.
_APPEND = """
local n = redis.call('INCR', KEYS[4])
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RPUSH', KEYS[3], n .. ' ' .. ARGV[2])
  redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
  redis.call('SADD', KEYS[2], ARGV[1])
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
end
return n
"""

_DELETE = """
for _, stream in ipairs(redis.call('SMEMBERS', KEYS[2])) do redis.call('DEL', ARGV[1] .. stream) end
redis.call('DEL', KEYS[2])
return redis.call('DEL', KEYS[1])
"""


class RedisSessionStore(SessionStore):
    """Sessions as hashes, stream histories as capped lists; all expire ``ttl`` after last use.

    Keys under ``<prefix>session:<id>``: the hash itself, ``:streams`` (the set of its stream
    ids) and ``:stream:<stream id>`` (a list of the newest ``history`` messages). Reading or
    writing a session pushes its expiry back; instead of the in-memory store's cap on the number
    of sessions, abandoned ones expire.

    Args:
        redis: the client.
        prefix: the prefix of every key.
        ttl: seconds a session is kept after its last use.
        history: messages kept per stream, for clients that resume.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: float = 3600.0,
        history: int = 100,
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}session:"
        self._sequence = f"{prefix}session-sequence"
        self._ttl_ms = max(1, int(ttl * 1000))
        self._history = history
        self._append = redis.register_script(_APPEND)
        self._delete = redis.register_script(_DELETE)

    async def put(self, session: Session) -> None:
        """Create or update a session."""
        fields: dict[FieldT, EncodableT] = {
            "client_id": session.client_id,
            "protocol_version": session.protocol_version,
            "created_at": repr(session.created_at),
            "log_level": session.log_level,
            "subscriptions": msgspec.json.encode(sorted(session.subscriptions)),
        }
        key = self._prefix + session.session_id
        with unavailable("the session store"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=fields)
                pipe.pexpire(key, self._ttl_ms)
                await pipe.execute()

    async def get(self, session_id: str) -> Session | None:
        """The session, if it exists (its expiry pushed back)."""
        key = self._prefix + session_id
        with unavailable("the session store"):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(key)
                pipe.pexpire(key, self._ttl_ms)
                fields, _ = await pipe.execute()
        if not fields:
            return None
        return Session(
            session_id=session_id,
            client_id=fields[b"client_id"].decode(),
            protocol_version=fields[b"protocol_version"].decode(),
            created_at=float(fields[b"created_at"]),
            log_level=fields[b"log_level"].decode(),
            subscriptions=frozenset(msgspec.json.decode(fields[b"subscriptions"], type=list[str])),
        )

    async def delete(self, session_id: str) -> bool:
        """End a session and forget its streams."""
        key = self._prefix + session_id
        with unavailable("the session store"):
            deleted = await self._delete(keys=[key, f"{key}:streams"], args=[f"{key}:stream:"])
        return bool(deleted)

    async def append(self, session_id: str, stream_id: str, payload: bytes) -> str:
        """Keep a stream message; its id is ``<stream>/<n>``."""
        key = self._prefix + session_id
        keys = [key, f"{key}:streams", f"{key}:stream:{stream_id}", self._sequence]
        with unavailable("the session store"):
            n = await self._append(
                keys=keys, args=[stream_id, payload, self._history, self._ttl_ms]
            )
        return f"{stream_id}/{int(n)}"

    async def replay(
        self, session_id: str, last_event_id: str
    ) -> tuple[str, Sequence[StreamMessage]]:
        """The rest of the stream ``last_event_id`` belongs to (empty if it is not kept)."""
        stream_id, _, number = last_event_id.rpartition("/")
        key = self._prefix + session_id
        with unavailable("the session store"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.exists(key)
                pipe.lrange(f"{key}:stream:{stream_id}", 0, -1)
                exists, elements = await pipe.execute()
        elements = elements if exists else []
        kept = [(n.decode(), p) for n, _, p in (element.partition(b" ") for element in elements)]
        numbers = [n for n, _ in kept]
        if number not in numbers:
            return stream_id, []
        after = numbers.index(number) + 1
        return stream_id, [StreamMessage(f"{stream_id}/{n}", p) for n, p in kept[after:]]
