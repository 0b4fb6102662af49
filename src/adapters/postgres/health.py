"""PostgreSQL's health check: ``SELECT 1`` through the client registry's connection pool."""

from __future__ import annotations

from src.adapters.postgres.clients import PostgresClientStore
from src.application.ports import HealthCheck


class PostgresHealthCheck(HealthCheck):
    """Answers when the database does (the pool is opened, and the table made, if need be)."""

    name = "postgres"

    def __init__(self, store: PostgresClientStore) -> None:
        self._store = store

    async def check(self) -> None:
        """Raise unless ``SELECT 1`` returns."""
        await self._store.ping()
