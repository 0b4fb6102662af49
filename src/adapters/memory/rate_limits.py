"""Token-bucket rate limits kept in memory, one bucket per key."""

from __future__ import annotations

import time
from collections import OrderedDict

from src.application.ports import RateLimiter


class MemoryRateLimiter(RateLimiter):
    """Buckets of ``capacity`` tokens refilled at ``rate`` tokens a second.

    A penalty (:meth:`charge`) may leave a bucket in debt, up to one bucket's worth, so that it
    takes longer to refill. At most ``max_keys`` buckets are kept; the least recently used go
    first (a full bucket is the same as no bucket, so forgetting an idle key loses little).
    """

    def __init__(self, *, capacity: float, rate: float, max_keys: int = 100_000) -> None:
        if capacity <= 0 or rate <= 0:
            raise ValueError("rate limits need a positive capacity and rate")
        self._capacity = capacity
        self._rate = rate
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    async def acquire(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens, or say how long until they are there."""
        now = time.monotonic()
        tokens, stamp = self._buckets.pop(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - stamp) * self._rate)
        wait = 0.0
        if tokens >= cost:
            tokens -= cost
        else:
            wait = (min(cost, self._capacity) - tokens) / self._rate
        self._store(key, tokens, now)
        return wait

    async def charge(self, key: str, cost: float) -> None:
        """Take ``cost`` tokens, into debt (at most one bucket's worth) if need be."""
        now = time.monotonic()
        tokens, stamp = self._buckets.pop(key, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - stamp) * self._rate)
        self._store(key, max(-self._capacity, tokens - cost), now)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
