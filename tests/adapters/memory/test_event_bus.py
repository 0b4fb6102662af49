"""MemoryEventBus: ordered ids, replay and its gaps, slow subscribers, closing and timeouts."""

from __future__ import annotations

import time
from collections.abc import Sequence

import anyio
import pytest

from src.adapters.memory import event_bus as event_bus_module
from src.adapters.memory.event_bus import MemoryEventBus
from src.application.ports import EventRecord, Subscription, SubscriptionClosed
from src.domain.events import Event, MessageBroadcast

pytestmark = pytest.mark.anyio


def event(n: int) -> MessageBroadcast:
    return MessageBroadcast(message=f"event {n}", sender="test", occurred_at=float(n))


def everything(_: Event) -> bool:
    return True


async def publish(bus: MemoryEventBus, count: int, start: int = 0) -> list[str]:
    return [await bus.publish(event(n)) for n in range(start, start + count)]


async def batch(subscription: Subscription, timeout: float = 1.0) -> Sequence[EventRecord]:
    return await subscription.next_batch(timeout)


def ids(records: Sequence[EventRecord]) -> list[str]:
    return [record.id for record in records]


class FakeTime:
    """Stands in for the ``time`` module inside the bus, so the log's age is under test control."""

    def __init__(self) -> None:
        self.monotonic_now = 1000.0

    def monotonic(self) -> float:
        return self.monotonic_now

    def time_ns(self) -> int:
        return time.time_ns()


async def test_ids_share_the_boot_prefix_and_increase_with_publication() -> None:
    bus = MemoryEventBus()
    published = await publish(bus, 12)
    prefixes = {event_id.rpartition("-")[0] for event_id in published}
    sequences = [int(event_id.rpartition("-")[2]) for event_id in published]
    assert len(prefixes) == 1
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == 12


async def test_a_new_subscriber_receives_live_events_in_order_but_not_the_past() -> None:
    bus = MemoryEventBus()
    await publish(bus, 2)
    subscription = await bus.subscribe(after=None, wants=everything)
    live = await publish(bus, 3, start=2)
    assert not subscription.gap
    assert ids(await batch(subscription)) == live


async def test_resuming_after_an_id_replays_what_followed_it_then_live_events() -> None:
    bus = MemoryEventBus()
    published = await publish(bus, 4)
    subscription = await bus.subscribe(after=published[1], wants=everything)
    assert not subscription.gap
    assert ids(await batch(subscription)) == published[2:]
    [live] = await publish(bus, 1, start=4)
    assert ids(await batch(subscription)) == [live]


async def test_resuming_after_the_latest_id_replays_nothing_and_reports_no_gap() -> None:
    bus = MemoryEventBus()
    published = await publish(bus, 3)
    subscription = await bus.subscribe(after=published[-1], wants=everything)
    assert not subscription.gap
    assert await batch(subscription, 0.01) == ()


async def test_the_filter_applies_to_replayed_and_live_events() -> None:
    bus = MemoryEventBus()
    published = await publish(bus, 4)
    subscription = await bus.subscribe(
        after=published[0], wants=lambda e: int(e.occurred_at) % 2 == 1
    )
    assert ids(await batch(subscription)) == [published[1], published[3]]
    later = await publish(bus, 2, start=4)
    assert ids(await batch(subscription)) == [later[1]]


# Templates: ``{boot}`` is this bus's boot prefix, known only once the bus exists.
FOREIGN_IDS = [
    "1-1",
    "{later_boot}-1",
    "garbage",
    "",
    "-",
    "{boot}",
    "{boot}-",
    "{boot}-x",
    "{boot}--1",
    "{boot}-1.0",
    "{boot}- 1",
    "{boot}-4",
    "{boot}-1000000000000000000000000000000",
    "{boot}{boot}-1",
    pytest.param(
        "{boot}-\u00b2",
        id="superscript-digit",
    ),
    pytest.param(
        "{boot}-" + "9" * 5000,
        id="5000-digits",
    ),
    pytest.param(
        "{boot}-\uff11",
        id="fullwidth-digit",
    ),
]


@pytest.mark.parametrize("template", FOREIGN_IDS)
async def test_an_id_this_bus_never_issued_reports_a_gap_and_replays_the_whole_log(
    template: str,
) -> None:
    bus = MemoryEventBus()
    published = await publish(bus, 3)
    boot = published[0].rpartition("-")[0]
    after = template.format(boot=boot, later_boot=int(boot) + 1)
    subscription = await bus.subscribe(after=after, wants=everything)
    assert subscription.gap
    assert ids(await batch(subscription)) == published


async def test_an_id_older_than_the_log_reports_a_gap_and_replays_what_is_kept() -> None:
    bus = MemoryEventBus(log_size=2)
    published = await publish(bus, 5)
    subscription = await bus.subscribe(after=published[1], wants=everything)
    assert subscription.gap
    assert ids(await batch(subscription)) == published[3:]


async def test_the_id_just_before_the_oldest_kept_is_no_gap() -> None:
    bus = MemoryEventBus(log_size=2)
    published = await publish(bus, 5)
    subscription = await bus.subscribe(after=published[2], wants=everything)
    assert not subscription.gap
    assert ids(await batch(subscription)) == published[3:]


async def test_events_older_than_the_log_age_are_not_replayed_and_leave_a_gap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeTime()
    monkeypatch.setattr(event_bus_module, "time", clock)
    bus = MemoryEventBus(log_age=10.0)
    old = await publish(bus, 2)
    clock.monotonic_now += 6
    recent = await publish(bus, 1, start=2)
    clock.monotonic_now += 6  # the first two are now 12 s old, the third 6 s

    lost = await bus.subscribe(after=old[0], wants=everything)
    assert lost.gap
    assert ids(await batch(lost)) == recent
    intact = await bus.subscribe(after=old[1], wants=everything)
    assert not intact.gap
    assert ids(await batch(intact)) == recent


async def test_when_the_whole_log_has_expired_only_the_latest_id_resumes_without_a_gap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeTime()
    monkeypatch.setattr(event_bus_module, "time", clock)
    bus = MemoryEventBus(log_age=10.0)
    published = await publish(bus, 3)
    clock.monotonic_now += 11
    assert (await bus.subscribe(after=published[1], wants=everything)).gap
    latest = await bus.subscribe(after=published[2], wants=everything)
    assert not latest.gap
    assert await batch(latest, 0.01) == ()


async def test_a_subscriber_that_overflows_is_cut_off_and_others_get_everything() -> None:
    bus = MemoryEventBus(queue_size=2)
    slow = await bus.subscribe(after=None, wants=everything)
    fast = await bus.subscribe(after=None, wants=everything)
    received: list[str] = []
    for n in range(5):
        await bus.publish(event(n))
        received += ids(await batch(fast))
    with pytest.raises(SubscriptionClosed) as closed:
        await batch(slow)
    assert closed.value.reason == "overflow"
    assert bus.subscriber_count == 1
    assert len(received) == 5
    assert ids(await batch(fast, 0.01)) == []


async def test_a_subscriber_within_its_queue_bound_is_not_cut_off() -> None:
    bus = MemoryEventBus(queue_size=3)
    subscription = await bus.subscribe(after=None, wants=everything)
    published = await publish(bus, 3)
    assert ids(await batch(subscription)) == published


async def test_closing_the_bus_ends_every_subscription_with_shutdown() -> None:
    bus = MemoryEventBus()
    idle = await bus.subscribe(after=None, wants=everything)
    waiting = await bus.subscribe(after=None, wants=everything)
    outcomes: list[str] = []

    async def wait() -> None:
        with pytest.raises(SubscriptionClosed) as closed:
            await batch(waiting, 30.0)
        outcomes.append(closed.value.reason)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait)
            await anyio.sleep(0.01)
            bus.close()
    assert outcomes == ["shutdown"]
    with pytest.raises(SubscriptionClosed) as closed:
        await batch(idle)
    assert closed.value.reason == "shutdown"
    assert bus.subscriber_count == 0


async def test_subscribing_to_a_closed_bus_ends_at_once_with_shutdown() -> None:
    bus = MemoryEventBus()
    bus.close()
    subscription = await bus.subscribe(after=None, wants=everything)
    with pytest.raises(SubscriptionClosed) as closed:
        await batch(subscription)
    assert closed.value.reason == "shutdown"
    assert bus.subscriber_count == 0


async def test_a_closed_subscription_ends_with_closed_and_receives_nothing() -> None:
    bus = MemoryEventBus()
    subscription = await bus.subscribe(after=None, wants=everything)
    subscription.close()
    subscription.close()  # idempotent
    await publish(bus, 1)
    with pytest.raises(SubscriptionClosed) as closed:
        await batch(subscription)
    assert closed.value.reason == "closed"


async def test_closing_a_subscription_wakes_its_waiting_reader() -> None:
    bus = MemoryEventBus()
    subscription = await bus.subscribe(after=None, wants=everything)
    reasons: list[str] = []

    async def wait() -> None:
        with pytest.raises(SubscriptionClosed) as closed:
            await batch(subscription, 30.0)
        reasons.append(closed.value.reason)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait)
            await anyio.sleep(0.01)
            subscription.close()
    assert reasons == ["closed"]


async def test_a_waiting_reader_is_woken_by_a_publication() -> None:
    bus = MemoryEventBus()
    subscription = await bus.subscribe(after=None, wants=everything)
    batches: list[list[str]] = []

    async def wait() -> None:
        batches.append(ids(await batch(subscription, 30.0)))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(wait)
            await anyio.sleep(0.01)
            published = await publish(bus, 1)
    assert batches == [published]


async def test_next_batch_returns_an_empty_batch_after_its_timeout() -> None:
    bus = MemoryEventBus()
    subscription = await bus.subscribe(after=None, wants=everything)
    started = time.monotonic()
    assert await subscription.next_batch(0.1) == ()
    elapsed = time.monotonic() - started
    assert 0.09 <= elapsed < 2.0


async def test_the_subscriber_count_returns_to_zero_once_subscriptions_close() -> None:
    bus = MemoryEventBus()
    subscriptions = [await bus.subscribe(after=None, wants=everything) for _ in range(3)]
    assert bus.subscriber_count == 3
    for remaining, subscription in zip((2, 1, 0), subscriptions, strict=True):
        subscription.close()
        assert bus.subscriber_count == remaining
