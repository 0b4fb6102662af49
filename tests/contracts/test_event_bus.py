"""The EventBus contract, run against every adapter: in memory, and on Redis Streams.

Delivery on Redis goes through each process's reader task, so these tests wait for events
(``collect``) rather than expect them in the batch right after a publish.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal
from typing import Any, Protocol

import anyio
import pytest

from src.adapters.memory.event_bus import MemoryEventBus
from src.adapters.redis import RedisEventBus
from src.adapters.redis.wire import id_order
from src.application.ports import EventBus, EventRecord, Subscription, SubscriptionClosed
from src.domain.calculator import Calculation, Operation
from src.domain.events import CalculationPerformed, Event, MessageBroadcast
from tests.contracts.redis_support import keyspace

pytestmark = pytest.mark.anyio


class Bus(EventBus, Protocol):
    def close(self) -> None: ...


MakeBus = Callable[..., Bus]


@pytest.fixture(params=["memory", "redis"])
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[MakeBus]:
    """Makes buses of one kind; on Redis they share one stream, like processes of one service."""
    if request.param == "memory":
        yield MemoryEventBus
        return
    async with keyspace() as space:
        made: list[RedisEventBus] = []

        def make(**options: Any) -> RedisEventBus:
            bus = RedisEventBus(space.client, prefix=space.prefix, exact_trim=True, **options)
            made.append(bus)
            return bus

        yield make
        for bus in made:
            await bus.aclose()


@pytest.fixture
def bus(make_bus: MakeBus) -> Bus:
    return make_bus()


def event(n: int) -> MessageBroadcast:
    return MessageBroadcast(message=f"event {n}", sender="test", occurred_at=float(n))


def everything(_: Event) -> bool:
    return True


async def publish(bus: EventBus, count: int, start: int = 0) -> list[str]:
    return [await bus.publish(event(n)) for n in range(start, start + count)]


async def collect_records(
    subscription: Subscription, count: int, timeout: float = 5.0
) -> list[EventRecord]:
    """The next ``count`` events (failing if they do not come in time)."""
    got: list[EventRecord] = []
    with anyio.fail_after(timeout):
        while len(got) < count:
            got += await subscription.next_batch(timeout)
    return got


async def collect(subscription: Subscription, count: int, timeout: float = 5.0) -> list[str]:
    """The ids of the next ``count`` events (failing if they do not come in time)."""
    return ids(await collect_records(subscription, count, timeout))


async def nothing_more(subscription: Subscription) -> None:
    assert ids(await subscription.next_batch(0.2)) == []


def ids(records: Sequence[EventRecord]) -> list[str]:
    return [record.id for record in records]


def order(event_id: str) -> tuple[int, int]:
    high, _, low = event_id.rpartition("-")
    return int(high), int(low)


async def test_ids_increase_with_publication(bus: Bus) -> None:
    published = await publish(bus, 12)
    assert [order(i) for i in published] == sorted({order(i) for i in published})


async def test_a_new_subscriber_receives_live_events_in_order_but_not_the_past(bus: Bus) -> None:
    await publish(bus, 2)
    subscription = await bus.subscribe(after=None, wants=everything)
    live = await publish(bus, 3, start=2)
    assert not subscription.gap
    assert await collect(subscription, 3) == live
    await nothing_more(subscription)


async def test_resuming_after_an_id_replays_what_followed_it_then_live_events(bus: Bus) -> None:
    published = await publish(bus, 4)
    subscription = await bus.subscribe(after=published[1], wants=everything)
    assert not subscription.gap
    assert await collect(subscription, 2) == published[2:]
    live = await publish(bus, 1, start=4)
    assert await collect(subscription, 1) == live
    await nothing_more(subscription)


async def test_resuming_after_the_latest_id_replays_nothing_and_reports_no_gap(bus: Bus) -> None:
    published = await publish(bus, 3)
    subscription = await bus.subscribe(after=published[-1], wants=everything)
    assert not subscription.gap
    await nothing_more(subscription)


async def test_the_audience_filter_applies_to_replayed_and_live_events(bus: Bus) -> None:
    published = await publish(bus, 4)
    odd = await bus.subscribe(after=published[0], wants=lambda e: int(e.occurred_at) % 2 == 1)
    assert await collect(odd, 2) == [published[1], published[3]]
    later = await publish(bus, 2, start=4)
    assert await collect(odd, 1) == [later[1]]
    await nothing_more(odd)


# "{first}" stands for the first id the bus issued, known once it has published.
FOREIGN_IDS = ["1-1", "0-1", "garbage", "", "-", "{first}x", "x{first}", "99999999999999-0"]
FOREIGN_IDS += ["18446744073709551616-0", "{first}-1", "1-" + "9" * 5000, "\uff11-1"]


@pytest.mark.parametrize("template", FOREIGN_IDS)
async def test_an_id_this_bus_never_issued_reports_a_gap_and_replays_the_whole_log(
    bus: Bus, template: str
) -> None:
    published = await publish(bus, 3)
    subscription = await bus.subscribe(after=template.format(first=published[0]), wants=everything)
    assert subscription.gap
    assert await collect(subscription, 3) == published
    await nothing_more(subscription)


async def test_an_id_older_than_the_log_reports_a_gap_and_replays_what_is_kept(
    make_bus: MakeBus,
) -> None:
    bus = make_bus(log_size=2)
    published = await publish(bus, 5)
    subscription = await bus.subscribe(after=published[1], wants=everything)
    assert subscription.gap
    assert await collect(subscription, 2) == published[3:]
    await nothing_more(subscription)


async def test_the_id_just_before_the_oldest_kept_is_no_gap(make_bus: MakeBus) -> None:
    bus = make_bus(log_size=2)
    published = await publish(bus, 5)
    subscription = await bus.subscribe(after=published[2], wants=everything)
    assert not subscription.gap
    assert await collect(subscription, 2) == published[3:]


async def test_a_subscriber_that_overflows_is_cut_off_and_others_get_everything(
    make_bus: MakeBus,
) -> None:
    bus = make_bus(queue_size=2)
    slow = await bus.subscribe(after=None, wants=everything)
    fast = await bus.subscribe(after=None, wants=everything)
    received: list[str] = []
    for n in range(5):
        await bus.publish(event(n))
        received += await collect(fast, 1)
    with pytest.raises(SubscriptionClosed) as closed:
        await slow.next_batch(1.0)
    assert closed.value.reason == "overflow"
    assert len(received) == 5
    await nothing_more(fast)


async def test_a_subscriber_within_its_queue_bound_is_not_cut_off(make_bus: MakeBus) -> None:
    bus = make_bus(queue_size=3)
    subscription = await bus.subscribe(after=None, wants=everything)
    published = await publish(bus, 3)
    await anyio.sleep(0.1)  # all three queued before the first read
    assert await collect(subscription, 3) == published


async def test_closing_the_bus_ends_every_subscription_with_shutdown(bus: Bus) -> None:
    idle = await bus.subscribe(after=None, wants=everything)
    waiting = await bus.subscribe(after=None, wants=everything)
    outcomes: list[str] = []

    async def wait() -> None:
        with pytest.raises(SubscriptionClosed) as closed:
            await waiting.next_batch(30.0)
        outcomes.append(closed.value.reason)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait)
            await anyio.sleep(0.05)
            bus.close()
    assert outcomes == ["shutdown"]
    with pytest.raises(SubscriptionClosed) as closed:
        await idle.next_batch(1.0)
    assert closed.value.reason == "shutdown"
    with pytest.raises(SubscriptionClosed) as late:
        await (await bus.subscribe(after=None, wants=everything)).next_batch(1.0)
    assert late.value.reason == "shutdown"


async def test_a_closed_subscription_ends_with_closed_and_receives_nothing(bus: Bus) -> None:
    subscription = await bus.subscribe(after=None, wants=everything)
    subscription.close()
    subscription.close()  # idempotent
    await publish(bus, 1)
    with pytest.raises(SubscriptionClosed) as closed:
        await subscription.next_batch(1.0)
    assert closed.value.reason == "closed"


async def test_a_waiting_reader_is_woken_by_a_publication(bus: Bus) -> None:
    subscription = await bus.subscribe(after=None, wants=everything)
    batches: list[list[str]] = []

    async def wait() -> None:
        batches.append(ids(await subscription.next_batch(30.0)))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait)
            await anyio.sleep(0.05)
            published = await publish(bus, 1)
    assert batches == [published]


async def test_next_batch_returns_an_empty_batch_after_its_timeout(bus: Bus) -> None:
    subscription = await bus.subscribe(after=None, wants=everything)
    started = anyio.current_time()
    assert await subscription.next_batch(0.1) == ()
    assert 0.09 <= anyio.current_time() - started < 2.0


async def test_recent_lists_the_newest_matching_events_oldest_first(bus: Bus) -> None:
    published = await publish(bus, 250)  # more than one page of a paged read
    assert ids(await bus.recent(limit=3, wants=everything)) == published[-3:]
    multiples = await bus.recent(limit=3, wants=lambda e: int(e.occurred_at) % 100 == 0)
    assert ids(multiples) == [published[0], published[100], published[200]]
    assert ids(await bus.recent(limit=1000, wants=everything)) == published
    assert await bus.recent(limit=0, wants=everything) == []


async def test_events_come_back_exactly_as_published(bus: Bus) -> None:
    operands = [Decimal("0.1"), Decimal("-1E+1000"), Decimal("1.000"), Decimal("3.14159265358979")]
    sent: list[Event] = [
        CalculationPerformed(
            calculation=Calculation(operation=operation, a=a, b=b, result=a + b),
            client_id="alice",
            occurred_at=1_700_000_000.123456,
        )
        for operation, a, b in zip(Operation, operands, reversed(operands), strict=True)
    ]
    sent.append(MessageBroadcast(message="héllo ✓ \x00", sender="bob", occurred_at=0.1 + 0.2))
    first = await bus.publish(event(0))
    subscription = await bus.subscribe(after=first, wants=everything)
    for one in sent:
        await bus.publish(one)
    replayed = await bus.subscribe(after=first, wants=everything)
    for received in (subscription, replayed):
        records: list[EventRecord] = []
        with anyio.fail_after(5):
            while len(records) < len(sent):
                records += await received.next_batch(5.0)
        assert [record.event for record in records] == sent
        assert [str(r.event.calculation.a) for r in records[:4]] == [  # type: ignore[union-attr]
            str(operand) for operand in operands
        ]
    assert [r.event for r in await bus.recent(limit=5, wants=everything)] == sent


# What only Redis can show: several processes (here, several buses) on one stream.


@pytest.fixture
async def redis_bus() -> AsyncIterator[Callable[..., RedisEventBus]]:
    async with keyspace() as space:
        made: list[RedisEventBus] = []

        def make(**options: Any) -> RedisEventBus:
            made.append(RedisEventBus(space.client, prefix=space.prefix, **options))
            return made[-1]

        yield make
        for bus in made:
            await bus.aclose()


async def test_a_publication_on_one_instance_reaches_the_subscribers_of_every_instance(
    redis_bus: Callable[..., RedisEventBus],
) -> None:
    a, b = redis_bus(), redis_bus()
    on_a = await a.subscribe(after=None, wants=everything)
    on_b = await b.subscribe(after=None, wants=everything)
    published = [await a.publish(event(0)), await b.publish(event(1))]
    assert await collect(on_a, 2) == published
    assert await collect(on_b, 2) == published


async def test_a_subscriber_moving_to_another_instance_resumes_without_loss_or_duplicates(
    redis_bus: Callable[..., RedisEventBus],
) -> None:
    a, b = redis_bus(), redis_bus()
    on_a = await a.subscribe(after=None, wants=everything)
    published = await publish(a, 3)
    seen = (await collect(on_a, 3))[:2]  # the client saw two before its connection dropped
    on_a.close()
    published += await publish(b, 2, start=3)
    on_b = await b.subscribe(after=seen[-1], wants=everything)
    assert not on_b.gap
    assert await collect(on_b, 3) == published[2:]
    published += await publish(a, 1, start=5)
    assert await collect(on_b, 1) == published[5:]
    await nothing_more(on_b)


async def test_events_published_while_a_subscriber_joins_are_delivered_exactly_once(
    redis_bus: Callable[..., RedisEventBus],
) -> None:
    publisher, follower = redis_bus(), redis_bus()
    warm = await follower.subscribe(after=None, wants=everything)  # the reader is running
    published = [await publisher.publish(event(0))]
    joined: list[tuple[int, Subscription]] = []

    joining = anyio.Event()

    async def keep_publishing() -> None:  # until every join is done, and at least 300 events
        while not joining.is_set() or len(published) < 300:
            published.append(await publisher.publish(event(len(published))))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(keep_publishing)
        for _ in range(20):  # join again and again while events keep coming
            # after the first event (the reader is past it), or after the newest acknowledged
            # one (the follower's reader may not have seen it yet)
            seen = 0 if len(joined) % 2 else len(published) - 1
            joined.append((seen, await follower.subscribe(after=published[seen], wants=everything)))
            await anyio.sleep(0.005)
        joining.set()
    total = len(published)
    assert await collect(warm, total) == published
    for seen, subscription in joined:
        assert not subscription.gap
        assert await collect(subscription, total - 1 - seen) == published[seen + 1 :]
        await nothing_more(subscription)


async def test_concurrent_publications_are_acknowledged_in_order_and_replay_from_any_of_them(
    redis_bus: Callable[..., RedisEventBus],
) -> None:
    bus, reader = redis_bus(), redis_bus()
    live = await reader.subscribe(after=None, wants=everything)
    # published together: they share scripts (group commit), in the order publish was called
    published = await asyncio.gather(*(bus.publish(event(n)) for n in range(600)))
    assert [id_order(i) for i in published] == sorted(id_order(i) for i in published)
    assert len(set(published)) == 600
    records = await collect_records(live, 600)
    assert [r.id for r in records] == published
    assert [r.event for r in records] == [event(n) for n in range(600)]
    for seen in (0, 255, 256, 599):  # across the batches' edges too
        resumed = await reader.subscribe(after=published[seen], wants=everything)
        assert not resumed.gap
        assert await collect(resumed, 599 - seen) == published[seen + 1 :]


async def test_events_older_than_the_log_age_are_not_replayed_and_leave_a_gap(
    redis_bus: Callable[..., RedisEventBus],
) -> None:
    bus = redis_bus(log_age=0.3, exact_trim=True)
    old = await publish(bus, 2)
    await anyio.sleep(0.4)
    recent = await publish(bus, 1, start=2)  # trims by age as it is appended
    lost = await bus.subscribe(after=old[0], wants=everything)
    assert lost.gap
    assert await collect(lost, 1) == recent
    intact = await bus.subscribe(after=old[1], wants=everything)
    assert not intact.gap
    assert await collect(intact, 1) == recent


async def test_an_entry_the_adapter_did_not_write_is_skipped(
    redis_bus: Callable[..., RedisEventBus],
) -> None:
    async with keyspace() as space:
        bus = RedisEventBus(space.client, prefix=space.prefix)
        subscription = await bus.subscribe(after=None, wants=everything)
        before = await bus.publish(event(0))
        await space.client.xadd(f"{space.prefix}events", {"e": b"\xc1 not msgpack"})
        await space.client.xadd(f"{space.prefix}events", {"other": b"field"})
        after = await bus.publish(event(1))
        assert await collect(subscription, 2) == [before, after]
        assert ids(await bus.recent(limit=5, wants=everything)) == [before, after]
        await bus.aclose()
