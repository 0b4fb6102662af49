"""The StreamSlots and TicketStore contracts, run against every adapter (memory, for now)."""

from __future__ import annotations

import time

import pytest

from src.adapters.memory.stream_slots import MemoryStreamSlots
from src.adapters.memory.tickets import MemoryTicketStore
from src.application.errors import TooManyStreams
from src.application.ports.streams import StreamSlots, TicketGrant, TicketStore
from src.application.security import Principal

pytestmark = pytest.mark.anyio

RESOURCE = "https://calc.example"


@pytest.fixture(params=["memory"])
def slots(request: pytest.FixtureRequest) -> StreamSlots:
    """Slots with a limit of 2 per client and 3 in total."""
    assert request.param == "memory"
    return MemoryStreamSlots(max_streams=3, max_per_client=2, retry_after=4.0)


@pytest.fixture(params=["memory"])
def tickets(request: pytest.FixtureRequest) -> TicketStore:
    assert request.param == "memory"
    return MemoryTicketStore()


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
