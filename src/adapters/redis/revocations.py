"""Revoked token ids in Redis, seen by every instance, with a short local cache of answers."""

from __future__ import annotations

import math
import time

from redis.asyncio import Redis

from src.adapters.redis.connection import DEFAULT_PREFIX, unavailable
from src.application.ports import RevocationList


class RedisRevocationList(RevocationList):
    """Each revoked ``jti`` is a key that expires when its token would have (``SET ... PX``).

    :meth:`is_revoked` runs on every authenticated request and every stream's periodic check, so
    answers are cached in this process: "revoked" until the token's expiry (a revocation is never
    undone), "not revoked" for at most ``negative_ttl`` seconds. That is the bound on staleness:
    a token revoked through another instance is refused here within ``negative_ttl`` seconds
    (1 s by default); one revoked through this instance, at once.

    Args:
        redis: the client.
        prefix: the prefix of every key.
        negative_ttl: seconds a "not revoked" answer is reused.
        max_cached: answers kept; past that the cache starts afresh (a bound, not an LRU: the
            hot tokens are back within one round trip each).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        negative_ttl: float = 1.0,
        max_cached: int = 100_000,
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}revoked:"
        self._negative_ttl = negative_ttl
        self._max_cached = max_cached
        self._cache: dict[
            str, tuple[bool, float]
        ] = {}  # jti -> (revoked, until when on the monotonic clock)

    async def revoke(self, token_id: str, expires_at: float) -> None:
        """Deny ``token_id`` until ``expires_at`` (nothing to do if it has expired already).

        Raises:
            ServiceUnavailable: Redis cannot be reached; the token is not revoked.
        """
        remaining = expires_at - time.time()
        if remaining <= 0:
            return
        with unavailable("the revocation list"):
            await self._redis.set(self._prefix + token_id, b"1", px=math.ceil(remaining * 1000))
        self._remember(token_id, True, remaining)

    async def is_revoked(self, token_id: str) -> bool:
        """Whether ``token_id`` is denied (possibly ``negative_ttl`` seconds late, see above).

        Raises:
            ServiceUnavailable: Redis cannot be reached and no recent answer is cached; the
                caller cannot tell, so it must not accept the token.
        """
        cached = self._cache.get(token_id)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        with unavailable("the revocation list"):
            ttl_ms = await self._redis.pttl(self._prefix + token_id)
        revoked = ttl_ms != -2  # -2: no such key; -1 (no expiry) would still be a revocation
        self._remember(token_id, revoked, ttl_ms / 1000 if ttl_ms > 0 else self._negative_ttl)
        return revoked

    def _remember(self, token_id: str, revoked: bool, seconds: float) -> None:
        if len(self._cache) >= self._max_cached:
            self._cache.clear()
        self._cache[token_id] = (revoked, time.monotonic() + seconds)
