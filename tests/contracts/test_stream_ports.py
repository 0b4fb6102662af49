"""The StreamSlots and TicketStore contracts, run against every adapter: in memory, and Redis."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from src.adapters.memory.stream_slots import MemoryStreamSlots
from src.adapters.memory.tickets import MemoryTicketStore
from src.adapters.redis import RedisStreamSlots, RedisTicketStore
from src.application.errors import TooManyStreams
from src.application.ports.streams import StreamSlots, TicketGrant, TicketStore
from src.application.security import Principal
from tests.contracts.redis_support import REDIS_URL, Keyspace, keyspace

pytestmark = pytest.mark.anyio

RESOURCE = "https://calc.example"


@pytest.fixture
async def space() -> AsyncIterator[Keyspace]:
    async with keyspace() as opened:
        yield opened


@pytest.fixture(params=["memory", "redis"])
async def slots(request: pytest.FixtureRequest, space: Keyspace) -> AsyncIterator[StreamSlots]:
    """Slots with a limit of 2 per client and 3 in total."""
    if request.param == "memory":
        yield MemoryStreamSlots(max_streams=3, max_per_client=2, retry_after=4.0)
        return
    redis = RedisStreamSlots(
        space.client, prefix=space.prefix, max_streams=3, max_per_client=2, retry_after=4.0
    )
    yield redis
    await redis.aclose()


@pytest.fixture(params=["memory", "redis"])
def tickets(request: pytest.FixtureRequest, space: Keyspace) -> TicketStore:
    if request.param == "memory":
        return MemoryTicketStore()
    return RedisTicketStore(space.client, prefix=space.prefix)


def grant(client_id: str = "alice", lasts: float = 30.0) -> TicketGrant:
    now = time.time()
    who = Principal(
        client_id=client_id,
        scopes=frozenset({"sse"}),
        token_id=f"jti-{client_id}",
        expires_at=now + 3600,
    )
    return TicketGrant(principal=who, resource=RESOURCE, expires_at=now + lasts)


async def test_slots_are_refused_past_the_per_client_limit(slots: StreamSlots) -> None:
    await slots.acquire("alice")
    await slots.acquire("alice")

    with pytest.raises(TooManyStreams) as refused:
        await slots.acquire("alice")

    assert refused.value.per_client
    assert refused.value.retry_after == 4.0
    await slots.acquire("bob")


async def test_slots_are_refused_past_the_total_limit(slots: StreamSlots) -> None:
    for client_id in ("alice", "bob", "carol"):
        await slots.acquire(client_id)

    with pytest.raises(TooManyStreams) as refused:
        await slots.acquire("dave")

    assert not refused.value.per_client


async def test_a_released_slot_can_be_taken_again(slots: StreamSlots) -> None:
    await slots.acquire("alice")
    await slots.acquire("alice")
    slots.release("alice")

    await slots.acquire("alice")
    with pytest.raises(TooManyStreams):
        await slots.acquire("alice")


async def test_releasing_what_was_never_taken_frees_nothing_else(slots: StreamSlots) -> None:
    for client_id in ("alice", "bob", "carol"):
        await slots.acquire(client_id)

    slots.release("nobody")

    with pytest.raises(TooManyStreams):
        await slots.acquire("dave")


async def test_a_ticket_is_redeemed_once(tickets: TicketStore) -> None:
    issued = grant()
    await tickets.issue("t-1", issued)

    assert await tickets.redeem("t-1") == issued
    assert await tickets.redeem("t-1") is None


async def test_an_unknown_ticket_redeems_to_nothing(tickets: TicketStore) -> None:
    await tickets.issue("t-1", grant())

    assert await tickets.redeem("t-2") is None
    assert await tickets.redeem("") is None


async def test_tickets_are_kept_apart(tickets: TicketStore) -> None:
    alice, bob = grant("alice"), grant("bob")
    await tickets.issue("t-a", alice)
    await tickets.issue("t-b", bob)

    assert await tickets.redeem("t-b") == bob
    assert await tickets.redeem("t-a") == alice


async def test_an_expired_ticket_is_void(tickets: TicketStore) -> None:
    await tickets.issue("t-old", grant(lasts=-1.0))
    await tickets.issue("t-new", grant())

    redeemed = await tickets.redeem("t-old")

    assert redeemed is None or redeemed.expires_at < time.time()  # swept, or seen to be void


# What only Redis can show: limits shared by every instance, and slots that cannot leak.


def redis_slots(space: Keyspace, *, lease: float = 30.0) -> RedisStreamSlots:
    return RedisStreamSlots(
        space.client, prefix=space.prefix, max_streams=3, max_per_client=2, lease=lease
    )


async def acquire_within(slots: StreamSlots, client_id: str, seconds: float) -> float:
    """Try until a slot is granted; how long that took."""
    started = time.monotonic()
    while True:
        try:
            await slots.acquire(client_id)
        except TooManyStreams:
            assert time.monotonic() - started < seconds, "no slot came free in time"
            await anyio.sleep(0.02)
        else:
            return time.monotonic() - started


async def test_the_limits_count_the_streams_of_every_instance(space: Keyspace) -> None:
    here, there = redis_slots(space), redis_slots(space)
    await here.acquire("alice")
    await there.acquire("alice")
    with pytest.raises(TooManyStreams) as refused:
        await here.acquire("alice")
    assert refused.value.per_client
    await there.acquire("bob")
    with pytest.raises(TooManyStreams) as full:
        await here.acquire("carol")
    assert not full.value.per_client
    here.release("alice")  # written in the background; the other instance sees it shortly
    assert await acquire_within(there, "alice", 2.0) < 2.0
    await here.aclose()
    await there.aclose()


async def test_racing_instances_never_pass_a_limit(space: Keyspace) -> None:
    instances = [redis_slots(space) for _ in range(4)]
    granted: list[bool] = []

    async def attempt(slots: StreamSlots) -> None:
        try:
            await slots.acquire("alice")
        except TooManyStreams:
            granted.append(False)
        else:
            granted.append(True)

    async with anyio.create_task_group() as tasks:
        for n in range(20):
            tasks.start_soon(attempt, instances[n % 4])
    assert granted.count(True) == 2
    for slots in instances:
        await slots.aclose()


async def test_a_live_instance_keeps_its_slots_past_its_lease(space: Keyspace) -> None:
    holder, other = redis_slots(space, lease=0.3), redis_slots(space)
    for client_id in ("alice", "bob", "carol"):
        await holder.acquire(client_id)
    await anyio.sleep(1.0)  # three leases: the heartbeat has renewed it
    with pytest.raises(TooManyStreams):
        await other.acquire("dave")
    await holder.aclose()  # a process that stops gives its slots back at once
    await other.acquire("dave")
    await other.aclose()


HOLDER = """
import asyncio, sys
from src.adapters.redis import RedisStreamSlots, connect

async def main() -> None:
    slots = RedisStreamSlots(connect(sys.argv[1]), prefix=sys.argv[2], max_streams=3,
                             max_per_client=2, lease=0.5)
    for client_id in ("alice", "alice", "bob"):
        await slots.acquire(client_id)
    print("holding", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_the_slots_of_a_process_that_died_lapse_with_its_lease(space: Keyspace) -> None:
    command = [sys.executable, "-c", HOLDER, REDIS_URL, space.prefix]
    async with await anyio.open_process(command, cwd=Path(__file__).parents[2]) as process:
        assert process.stdout is not None
        with anyio.fail_after(10):
            assert await process.stdout.receive() == b"holding\n"
        survivor = redis_slots(space)
        with pytest.raises(TooManyStreams):
            await survivor.acquire("alice")
        process.kill()  # no release, no goodbye
        await process.wait()
    assert await acquire_within(survivor, "alice", 5.0) < 5.0
    await survivor.acquire("carol")
    await survivor.aclose()


async def test_a_ticket_is_redeemed_once_across_instances(space: Keyspace) -> None:
    issued = grant()
    await RedisTicketStore(space.client, prefix=space.prefix).issue("t-1", issued)
    results: list[TicketGrant | None] = []

    async def redeem() -> None:
        results.append(await RedisTicketStore(space.client, prefix=space.prefix).redeem("t-1"))

    async with anyio.create_task_group() as tasks:
        for _ in range(10):
            tasks.start_soon(redeem)
    assert [result for result in results if result is not None] == [issued]


async def test_a_ticket_expires_with_its_grant(space: Keyspace) -> None:
    store = RedisTicketStore(space.client, prefix=space.prefix)
    await store.issue("t-1", grant(lasts=30.0))
    ttl = await space.client.pttl(f"{space.prefix}ticket:t-1")
    assert 29_000 < ttl <= 30_000
