"""MemoryRateLimiter: token buckets per key, refilled with time, bounded in number."""

from __future__ import annotations

import pytest

from src.adapters.memory import rate_limits as rate_limits_module
from src.adapters.memory.rate_limits import MemoryRateLimiter

pytestmark = pytest.mark.anyio


class Monotonic:
    """Stands in for ``time`` in the limiter: seconds pass only when the test says."""

    def __init__(self) -> None:
        self.now = 500.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Monotonic:
    clock = Monotonic()
    monkeypatch.setattr(rate_limits_module, "time", clock)
    return clock


async def test_a_new_key_has_a_full_bucket(clock: Monotonic) -> None:
    limiter = MemoryRateLimiter(capacity=3, rate=1)
    assert [await limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await limiter.acquire("a") == pytest.approx(1.0)


async def test_keys_have_separate_buckets(clock: Monotonic) -> None:
    limiter = MemoryRateLimiter(capacity=1, rate=1)
    assert await limiter.acquire("a") == 0.0
    assert await limiter.acquire("a") > 0
    assert await limiter.acquire("b") == 0.0


async def test_the_wait_is_how_long_until_the_cost_is_there_and_nothing_is_taken(
    clock: Monotonic,
) -> None:
    limiter = MemoryRateLimiter(capacity=10, rate=2)
    assert await limiter.acquire("a", 9) == 0.0
    assert await limiter.acquire("a", 5) == pytest.approx(2.0)
    assert await limiter.acquire("a", 5) == pytest.approx(2.0)
    clock.now += 2.0
    assert await limiter.acquire("a", 5) == 0.0


async def test_a_cost_beyond_capacity_waits_only_for_a_full_bucket(clock: Monotonic) -> None:
    limiter = MemoryRateLimiter(capacity=4, rate=1)
    assert await limiter.acquire("a", 4) == 0.0
    assert await limiter.acquire("a", 100) == pytest.approx(4.0)


async def test_a_bucket_refills_at_the_rate_up_to_its_capacity(clock: Monotonic) -> None:
    limiter = MemoryRateLimiter(capacity=5, rate=0.5)
    assert await limiter.acquire("a", 5) == 0.0
    clock.now += 4
    assert await limiter.acquire("a", 2) == 0.0
    assert await limiter.acquire("a", 0.5) > 0
    clock.now += 3600
    assert await limiter.acquire("a", 5) == 0.0
    assert await limiter.acquire("a", 0.1) > 0


async def test_the_least_recently_used_buckets_are_forgotten_full(clock: Monotonic) -> None:
    limiter = MemoryRateLimiter(capacity=1, rate=0.001, max_keys=2)
    for key in ("a", "b", "c"):
        assert await limiter.acquire(key) == 0.0
    # "a" was evicted, so it starts over with a full bucket; "c" is still drained.
    assert await limiter.acquire("a") == 0.0
    assert await limiter.acquire("c") > 0


@pytest.mark.parametrize(("capacity", "rate"), [(0, 1), (1, 0), (-1, 1), (1, -1)])
def test_a_limiter_needs_a_positive_capacity_and_rate(capacity: float, rate: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        MemoryRateLimiter(capacity=capacity, rate=rate)


async def test_a_charge_takes_tokens_into_debt_which_takes_longer_to_refill(
    clock: Monotonic,
) -> None:
    limiter = MemoryRateLimiter(capacity=10, rate=1)
    assert await limiter.acquire("a", 8) == 0.0
    await limiter.charge("a", 6)
    assert await limiter.acquire("a") == pytest.approx(5.0)
    clock.now += 5
    assert await limiter.acquire("a") == 0.0


async def test_the_debt_is_at_most_one_bucket(clock: Monotonic) -> None:
    limiter = MemoryRateLimiter(capacity=4, rate=1)
    for _ in range(10):
        await limiter.charge("a", 4)
    assert await limiter.acquire("a") == pytest.approx(5.0)
    clock.now += 5
    assert await limiter.acquire("a") == 0.0
