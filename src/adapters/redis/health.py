"""Redis's health check: ``PING`` on the client every Redis adapter shares."""

from __future__ import annotations

from redis.asyncio import Redis

from src.application.ports import HealthCheck


class RedisHealthCheck(HealthCheck):
    """Answers when Redis answers ``PING`` (on the shared pool: what requests would use)."""

    name = "redis"

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def check(self) -> None:
        """Raise unless Redis replies."""
        await self._redis.ping()
