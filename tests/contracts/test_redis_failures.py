"""What the Redis adapters do when Redis goes away and comes back, on servers the tests run.

Each test starts a redis-server of its own on a free port (never the shared one: killing its
connections or stopping it would disturb everyone else) and stops it at will.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import anyio
import pytest
from redis.asyncio import Redis

from src.adapters.redis import (
    RedisEventBus,
    RedisRateLimiter,
    RedisRevocationList,
    RedisSessionMailboxes,
    RedisSessionStore,
    RedisStreamSlots,
    RedisTicketStore,
    connect,
)
from src.application.errors import ServiceUnavailable
from src.application.ports import Session, Subscription, SubscriptionClosed
from src.application.ports.streams import TicketGrant
from src.application.security import Principal
from src.domain.events import Event, MessageBroadcast
from tests.contracts.redis_support import RedisServer

pytestmark = pytest.mark.anyio


def everything(_: Event) -> bool:
    return True


def event(n: int) -> MessageBroadcast:
    return MessageBroadcast(message=f"event {n}", sender="test", occurred_at=float(n))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    running = RedisServer(tmp_path)
    running.start()
    yield running
    running.stop()


@pytest.fixture
async def client(server: RedisServer) -> AsyncIterator[Redis]:
    redis = connect(server.url, timeout=2.0)
    yield redis
    await redis.aclose()


async def ended(subscription: Subscription) -> str:
    """Why ``subscription`` ends (failing if it goes on for seconds)."""
    with anyio.fail_after(5):
        while True:
            try:
                await subscription.next_batch(5.0)
            except SubscriptionClosed as closed:
                return closed.reason


async def resume(
    bus: RedisEventBus, after: str | None, *, within: float = 15.0
) -> tuple[Subscription, list[str]]:
    """Subscribe as a reconnecting client does, again until the bus is back; the first batch."""
    deadline = time.monotonic() + within
    while True:
        subscription = await bus.subscribe(after=after, wants=everything)
        try:
            first = await subscription.next_batch(0)
        except SubscriptionClosed as closed:
            reason = closed.reason
        else:
            return subscription, [record.id for record in first]
        assert reason == "unavailable"
        assert time.monotonic() < deadline, "the bus did not recover"
        await anyio.sleep(0.1)


async def collect(
    subscription: Subscription, count: int, got: list[str] | None = None
) -> list[str]:
    """The ids of the next events, until there are ``count`` (with those already ``got``)."""
    got = list(got or [])
    with anyio.fail_after(10):
        while len(got) < count:
            got += [record.id for record in await subscription.next_batch(5.0)]
    return got


async def publish_until_acknowledged(bus: RedisEventBus, n: int) -> str:
    """Publish as a client told 503 does: again until the bus acknowledges it."""
    with anyio.fail_after(15):
        while True:
            try:
                return await bus.publish(event(n))
            except ServiceUnavailable:
                await anyio.sleep(0.1)


async def test_while_redis_is_down_the_bus_refuses_and_ends_its_streams_then_recovers(
    server: RedisServer, client: Redis
) -> None:
    bus = RedisEventBus(client, block=0.5)
    live = await bus.subscribe(after=None, wants=everything)
    [before] = [await bus.publish(event(0))]
    assert await collect(live, 1) == [before]

    server.stop()
    assert await ended(live) == "unavailable"
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="event bus is unavailable"):
        await bus.publish(event(1))
    assert time.monotonic() - started < 2.0
    with pytest.raises(ServiceUnavailable):
        await bus.recent(limit=5, wants=everything)
    assert await ended(await bus.subscribe(after=before, wants=everything)) == "unavailable"

    server.start()  # empty: this one keeps nothing across restarts
    other = RedisEventBus(client)
    again, _ = await resume(bus, None)
    published = [await other.publish(event(2)), await bus.publish(event(3))]
    assert await collect(again, 2) == published
    await bus.aclose()
    await other.aclose()


async def test_publications_waiting_together_all_fail_when_redis_goes(
    server: RedisServer, client: Redis
) -> None:
    bus = RedisEventBus(client)
    first = await bus.publish(event(0))
    server.stop()
    outcomes = await asyncio.gather(
        *(bus.publish(event(n)) for n in range(1, 50)), return_exceptions=True
    )
    assert all(isinstance(outcome, ServiceUnavailable) for outcome in outcomes)
    server.start()
    again = await publish_until_acknowledged(bus, 50)  # the next batch goes through
    assert again != first
    await bus.aclose()


async def test_nothing_acknowledged_is_lost_when_the_connections_drop(
    server: RedisServer, client: Redis
) -> None:
    a, b = RedisEventBus(client), RedisEventBus(client)
    on_b = await b.subscribe(after=None, wants=everything)
    published = [await a.publish(event(n)) for n in range(3)]
    seen = (await collect(on_b, 3))[0]  # the client has taken in the first one only

    admin = connect(server.url)
    await admin.client_kill_filter(_type="normal", skipme=True)  # every other connection
    await admin.aclose()
    assert await ended(on_b) == "unavailable"
    published.append(await publish_until_acknowledged(a, 3))

    resumed, replayed = await resume(b, seen)
    assert not resumed.gap
    assert await collect(resumed, 3, replayed) == published[1:]
    published.append(await a.publish(event(4)))
    assert await collect(resumed, 1) == published[4:]
    await a.aclose()
    await b.aclose()


async def test_acknowledged_events_survive_a_restart_of_a_persistent_redis(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, persist=True)
    server.start()
    client = connect(server.url, timeout=2.0)
    try:
        bus = RedisEventBus(client)
        live = await bus.subscribe(after=None, wants=everything)
        published = [await bus.publish(event(n)) for n in range(3)]
        seen = (await collect(live, 3))[0]
        server.stop()
        assert await ended(live) == "unavailable"
        server.start()
        resumed, replayed = await resume(bus, seen)
        assert not resumed.gap
        assert await collect(resumed, 2, replayed) == published[1:]
        published.append(await bus.publish(event(3)))
        assert await collect(resumed, 1) == published[3:]
        await bus.aclose()
    finally:
        await client.aclose()
        server.stop()


def grant() -> TicketGrant:
    who = Principal(client_id="a", scopes=frozenset(), token_id="t", expires_at=time.time() + 60)
    return TicketGrant(principal=who, resource="https://calc.example", expires_at=time.time() + 60)


SESSION = Session(session_id="s", client_id="a", protocol_version="2025-06-18", created_at=1.0)
Operation = Callable[[Redis], Awaitable[object]]
OPERATIONS: dict[str, Operation] = {
    "revoke": lambda r: RedisRevocationList(r).revoke("jti", time.time() + 60),
    "is_revoked": lambda r: RedisRevocationList(r).is_revoked("jti"),
    "acquire": lambda r: RedisRateLimiter(r, capacity=1, rate=1).acquire("k"),
    "charge": lambda r: RedisRateLimiter(r, capacity=1, rate=1).charge("k", 1),
    "issue": lambda r: RedisTicketStore(r).issue("t", grant()),
    "redeem": lambda r: RedisTicketStore(r).redeem("t"),
    "slot": lambda r: RedisStreamSlots(r, max_streams=1, max_per_client=1).acquire("a"),
    "put": lambda r: RedisSessionStore(r).put(SESSION),
    "get": lambda r: RedisSessionStore(r).get("s"),
    "delete": lambda r: RedisSessionStore(r).delete("s"),
    "append": lambda r: RedisSessionStore(r).append("s", "x", b"m"),
    "replay": lambda r: RedisSessionStore(r).replay("s", "x/1"),
    "open": lambda r: RedisSessionMailboxes(r).open("s"),
    "send": lambda r: RedisSessionMailboxes(r).send("s", b"m"),
}


@pytest.mark.parametrize("operation", OPERATIONS)
async def test_every_adapter_reports_an_unreachable_redis_as_service_unavailable(
    server: RedisServer, client: Redis, operation: str
) -> None:
    server.stop()
    with anyio.fail_after(5), pytest.raises(ServiceUnavailable):
        await OPERATIONS[operation](client)


async def test_open_mailboxes_end_when_redis_goes_and_new_ones_work_when_it_is_back(
    server: RedisServer, client: Redis
) -> None:
    mailboxes = RedisSessionMailboxes(client)
    box = await mailboxes.open("s")
    assert await mailboxes.send("s", b"hello")
    assert await box.receive(1.0) == [b"hello"]
    server.stop()
    with anyio.fail_after(5), pytest.raises(SubscriptionClosed) as closed:
        await box.receive(5.0)
    assert closed.value.reason == "unavailable"
    server.start()
    again = await mailboxes.open("s")
    assert await mailboxes.send("s", b"again")
    assert await again.receive(1.0) == [b"again"]
    await mailboxes.aclose()
