"""Redis adapters: the shared state that lets several processes and instances act as one service.

Every key lives under a configurable prefix (``calcmcp:`` by default), so several deployments, or
tests, can share one Redis. Each adapter takes a client made by :func:`connect`.
"""

from src.adapters.redis.connection import connect
from src.adapters.redis.event_bus import RedisEventBus
from src.adapters.redis.mailboxes import RedisSessionMailboxes
from src.adapters.redis.rate_limits import RedisRateLimiter
from src.adapters.redis.revocations import RedisRevocationList
from src.adapters.redis.sessions import RedisSessionStore
from src.adapters.redis.stream_slots import RedisStreamSlots
from src.adapters.redis.tickets import RedisTicketStore

__all__ = [
    "RedisEventBus",
    "RedisRateLimiter",
    "RedisRevocationList",
    "RedisSessionMailboxes",
    "RedisSessionStore",
    "RedisStreamSlots",
    "RedisTicketStore",
    "connect",
]
