"""Readiness: whether each dependency the service is configured with answers right now."""

from __future__ import annotations

from typing import Protocol


class HealthCheck(Protocol):
    """One dependency's check (the data directory, Redis, PostgreSQL)."""

    @property
    def name(self) -> str:
        """What is checked, as the readiness report names it (``data_dir``, ``redis``, ...)."""
        ...

    async def check(self) -> None:
        """Return when the dependency answers; raise (anything) when it does not.

        The caller bounds the wait: a check need not time itself out.
        """
        ...
