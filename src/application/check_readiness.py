"""Use case: tell whether every configured dependency answers, quickly, even when one hangs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from src.application.ports import HealthCheck

CHECK_TIMEOUT = 0.5
"""Seconds one check may take: a probe must hear back well within a second, whatever hangs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """One dependency's answer.

    ``error`` is the failure's kind (``timeout``, an exception's class name), fit for a public
    answer; ``detail`` its message, which may name hosts or users: for the server's log only.
    """

    name: str
    ok: bool
    latency_ms: float
    error: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Readiness:
    """Every check's result; ``ready`` when all passed."""

    ready: bool
    checks: tuple[CheckResult, ...]


class CheckReadiness:
    """Runs every configured health check at once, each bounded in time.

    Rules:
        - public: no principal (a load balancer or orchestrator asks, without credentials);
        - ready only if every check passes; a check that takes longer than ``timeout`` seconds
          fails as ``timeout``, so the whole answer comes within about ``timeout``.
    """

    def __init__(self, *, checks: Sequence[HealthCheck], timeout: float = CHECK_TIMEOUT) -> None:
        self._checks = tuple(checks)
        self._timeout = timeout

    async def execute(self) -> Readiness:
        """Check everything, concurrently."""
        results = await asyncio.gather(*(self._run(check) for check in self._checks))
        return Readiness(ready=all(result.ok for result in results), checks=tuple(results))

    async def _run(self, check: HealthCheck) -> CheckResult:
        started = time.perf_counter()
        error = detail = None
        try:
            await asyncio.wait_for(check.check(), self._timeout)
        except TimeoutError:
            error, detail = "timeout", f"no answer within {self._timeout} s"
        except Exception as failure:  # any failure is an answer, not a crash of the probe
            error, detail = type(failure).__name__, str(failure)
        latency = round((time.perf_counter() - started) * 1000, 3)
        return CheckResult(
            name=check.name, ok=error is None, latency_ms=latency, error=error, detail=detail
        )
