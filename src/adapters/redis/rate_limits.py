"""Token-bucket rate limits in Redis, shared by every instance, one atomic script per take."""

from __future__ import annotations

from redis.asyncio import Redis

from src.adapters.redis.connection import DEFAULT_PREFIX, unavailable
from src.application.ports import RateLimiter

# The same arithmetic as the in-memory buckets, on the server's clock (TIME), so that instances
# with skewed clocks share one bucket fairly. A bucket expires once it would have refilled: a full
# bucket and no bucket are the same. The wait is returned as text: Lua numbers become integers.
_TAKE = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local capacity, rate, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or capacity
local stamp = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if ARGV[4] == 'charge' then
  tokens = math.max(-capacity, tokens - cost)
elseif tokens >= cost then
  tokens = tokens - cost
else
  wait = (math.min(cost, capacity) - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'stamp', now)
local ttl = math.ceil((capacity - tokens) / rate * 1000) + 1000
redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
return tostring(wait)
"""


class RedisRateLimiter(RateLimiter):
    """Buckets of ``capacity`` tokens refilled at ``rate`` tokens a second, kept in Redis.

    A penalty (:meth:`charge`) may leave a bucket in debt, up to one bucket's worth, so that it
    takes longer to refill. Both calls raise ``ServiceUnavailable`` when Redis cannot be reached.
    """

    def __init__(
        self, redis: Redis, *, capacity: float, rate: float, prefix: str = DEFAULT_PREFIX
    ) -> None:
        if capacity <= 0 or rate <= 0:
            raise ValueError("rate limits need a positive capacity and rate")
        self._limits = (capacity, rate)
        self._prefix = f"{prefix}rate:"
        self._take = redis.register_script(_TAKE)

    async def acquire(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens, or say how long until they are there (nothing taken then)."""
        return await self._run(key, cost, "acquire")

    async def charge(self, key: str, cost: float) -> None:
        """Take ``cost`` tokens, into debt (at most one bucket's worth) if need be."""
        await self._run(key, cost, "charge")

    async def _run(self, key: str, cost: float, mode: str) -> float:
        with unavailable("rate limiting"):
            wait = await self._take(keys=[self._prefix + key], args=[*self._limits, cost, mode])
        return float(wait)
