"""CheckReadiness: every check at once, each bounded in time; ready only if all pass."""

from __future__ import annotations

import asyncio
import time

import pytest

from src.application.check_readiness import CHECK_TIMEOUT, CheckReadiness
from src.application.ports import HealthCheck

pytestmark = pytest.mark.anyio


class Answers:
    """A dependency that answers (after ``delay`` seconds)."""

    def __init__(self, name: str, delay: float = 0.0) -> None:
        self.name = name
        self.delay = delay
        self.calls = 0

    async def check(self) -> None:
        self.calls += 1
        await asyncio.sleep(self.delay)


class Fails:
    """A dependency that refuses, with a message that names where it is."""

    def __init__(self, name: str, error: Exception) -> None:
        self.name = name
        self.error = error

    async def check(self) -> None:
        raise self.error


class Hangs:
    """A dependency that never answers; notes whether it was let go of."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cancelled = False

    async def check(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def test_ready_when_every_check_passes() -> None:
    checks = [Answers("data_dir"), Answers("redis")]

    readiness = await CheckReadiness(checks=checks).execute()

    assert readiness.ready
    assert [(c.name, c.ok, c.error, c.detail) for c in readiness.checks] == [
        ("data_dir", True, None, None),
        ("redis", True, None, None),
    ]
    assert [check.calls for check in checks] == [1, 1]


async def test_ready_with_nothing_to_check() -> None:
    readiness = await CheckReadiness(checks=[]).execute()

    assert readiness.ready
    assert readiness.checks == ()


async def test_a_failing_check_is_named_with_its_kind_and_its_message_kept_apart() -> None:
    refusal = ConnectionRefusedError("connect to db.internal:5432 as admin failed")
    checks: list[HealthCheck] = [Answers("data_dir"), Fails("postgres", refusal)]

    readiness = await CheckReadiness(checks=checks).execute()

    assert not readiness.ready
    failed = readiness.checks[1]
    assert (failed.name, failed.ok, failed.error) == ("postgres", False, "ConnectionRefusedError")
    assert failed.detail == "connect to db.internal:5432 as admin failed"  # for the log only
    assert readiness.checks[0].ok


async def test_a_hanging_check_times_out_and_is_let_go_of() -> None:
    hanging = Hangs("redis")

    started = time.perf_counter()
    readiness = await CheckReadiness(checks=[hanging], timeout=0.1).execute()
    elapsed = time.perf_counter() - started

    assert 0.1 <= elapsed < 0.9  # the timeout, not the hang
    assert not readiness.ready
    check = readiness.checks[0]
    assert (check.ok, check.error) == (False, "timeout")
    assert check.latency_ms >= 100
    assert hanging.cancelled


async def test_checks_run_at_once_so_the_answer_takes_one_timeout_not_the_sum() -> None:
    checks: list[HealthCheck] = [Hangs("redis"), Hangs("postgres"), Answers("data_dir", delay=0.05)]

    started = time.perf_counter()
    readiness = await CheckReadiness(checks=checks, timeout=0.3).execute()
    elapsed = time.perf_counter() - started

    assert elapsed < 0.6  # one after the other would take 0.65 s at least
    assert [(c.name, c.ok) for c in readiness.checks] == [
        ("redis", False),
        ("postgres", False),
        ("data_dir", True),
    ]


async def test_a_slow_check_within_the_timeout_passes_and_its_latency_is_measured() -> None:
    readiness = await CheckReadiness(checks=[Answers("redis", delay=0.05)], timeout=1).execute()

    assert readiness.ready
    assert 50 <= readiness.checks[0].latency_ms < 1000


def test_the_default_timeout_leaves_a_probe_its_second() -> None:
    assert CHECK_TIMEOUT < 1.0
