"""The RateLimiter contract, run against every adapter: in memory, and on Redis (its clock).

Redis buckets run on the server's clock, which tests cannot stop: waits are compared with a
tolerance, and refills use fast rates and short sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
import pytest

from src.adapters.memory.rate_limits import MemoryRateLimiter
from src.adapters.redis import RedisRateLimiter
from src.application.ports import RateLimiter
from tests.contracts.redis_support import Keyspace, keyspace

pytestmark = pytest.mark.anyio
MakeLimiter = Callable[..., RateLimiter]


@pytest.fixture
async def space() -> AsyncIterator[Keyspace]:
    async with keyspace() as opened:
        yield opened


@pytest.fixture(params=["memory", "redis"])
def make(request: pytest.FixtureRequest, space: Keyspace) -> MakeLimiter:
    if request.param == "memory":
        return MemoryRateLimiter
    return lambda **limits: RedisRateLimiter(space.client, prefix=space.prefix, **limits)


def about(seconds: float) -> object:
    return pytest.approx(seconds, abs=0.05)


async def test_a_new_key_has_a_full_bucket(make: MakeLimiter) -> None:
    limiter = make(capacity=3, rate=1)
    assert [await limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await limiter.acquire("a") == about(1.0)


async def test_keys_have_separate_buckets(make: MakeLimiter) -> None:
    limiter = make(capacity=1, rate=1)
    assert await limiter.acquire("a") == 0.0
    assert await limiter.acquire("a") > 0
    assert await limiter.acquire("b") == 0.0
    assert await limiter.acquire("a:b") == 0.0


async def test_the_wait_is_how_long_until_the_cost_is_there_and_nothing_is_taken(
    make: MakeLimiter,
) -> None:
    limiter = make(capacity=10, rate=20)
    assert await limiter.acquire("a", 9) == 0.0
    assert await limiter.acquire("a", 5) == about(0.2)
    assert await limiter.acquire("a", 5) == about(0.2)
    await anyio.sleep(0.25)
    assert await limiter.acquire("a", 5) == 0.0


async def test_a_cost_beyond_capacity_waits_only_for_a_full_bucket(make: MakeLimiter) -> None:
    limiter = make(capacity=4, rate=1)
    assert await limiter.acquire("a", 4) == 0.0
    assert await limiter.acquire("a", 100) == about(4.0)


async def test_a_bucket_refills_at_the_rate_up_to_its_capacity(make: MakeLimiter) -> None:
    limiter = make(capacity=5, rate=50)
    assert await limiter.acquire("a", 5) == 0.0
    await anyio.sleep(0.3)  # 15 tokens' worth of time, but the bucket holds 5
    assert await limiter.acquire("a", 5) == 0.0
    assert await limiter.acquire("a", 2) > 0


@pytest.mark.parametrize(("capacity", "rate"), [(0, 1), (1, 0), (-1, 1), (1, -1)])
async def test_a_limiter_needs_a_positive_capacity_and_rate(
    make: MakeLimiter, capacity: float, rate: float
) -> None:
    with pytest.raises(ValueError, match="positive"):
        make(capacity=capacity, rate=rate)


async def test_a_charge_takes_tokens_into_debt_which_takes_longer_to_refill(
    make: MakeLimiter,
) -> None:
    limiter = make(capacity=10, rate=10)
    assert await limiter.acquire("a", 8) == 0.0
    await limiter.charge("a", 6)
    assert await limiter.acquire("a") == about(0.5)
    await anyio.sleep(0.55)
    assert await limiter.acquire("a") == 0.0


async def test_the_debt_is_at_most_one_bucket(make: MakeLimiter) -> None:
    limiter = make(capacity=4, rate=10)
    for _ in range(10):
        await limiter.charge("a", 4)
    assert await limiter.acquire("a") == about(0.5)


# What only Redis can show: one bucket for every instance, and no key left behind.


async def test_instances_share_one_bucket(space: Keyspace) -> None:
    here, there = (
        RedisRateLimiter(space.client, prefix=space.prefix, capacity=2, rate=1) for _ in "ab"
    )
    assert await here.acquire("client") == 0.0
    assert await there.acquire("client") == 0.0
    assert await here.acquire("client") > 0
    assert await there.acquire("client") > 0


async def test_concurrent_takes_never_pass_the_capacity(space: Keyspace) -> None:
    limiter = RedisRateLimiter(space.client, prefix=space.prefix, capacity=10, rate=0.001)
    waits: list[float] = []

    async def take() -> None:
        waits.append(await limiter.acquire("client"))

    async with anyio.create_task_group() as tasks:
        for _ in range(50):
            tasks.start_soon(take)
    assert waits.count(0.0) == 10


async def test_a_bucket_is_forgotten_once_it_would_be_full_again(space: Keyspace) -> None:
    limiter = RedisRateLimiter(space.client, prefix=space.prefix, capacity=1, rate=100)
    await limiter.charge("client", 1)
    ttl = await space.client.pttl(f"{space.prefix}rate:client")
    assert 0 < ttl <= 1_010
