"""StreamEvents: who sees what, type filters, resumption, and how a stream ends."""

from __future__ import annotations

import time

import anyio
import pytest

from src.adapters.memory.event_bus import MemoryEventBus
from src.adapters.memory.revocations import MemoryRevocationList
from src.adapters.memory.stream_slots import MemoryStreamSlots
from src.application.errors import InsufficientScope, StreamEnded, TooManyStreams
from src.application.security import Principal
from src.application.stream_events import EventStream, StreamEventsCommand
from src.domain.calculator import Calculator, Operation
from src.domain.events import CalculationPerformed, Event, EventType, MessageBroadcast
from tests.application.fakes import NOW, FakeClock, next_events, principal, stream_events

pytestmark = pytest.mark.anyio


def broadcast(message: str, sender: str = "carol") -> MessageBroadcast:
    return MessageBroadcast(message=message, sender=sender, occurred_at=NOW)


def calculation(client_id: str, a: str = "1") -> CalculationPerformed:
    performed = Calculator().evaluate(Operation.ADD, a, "1")
    return CalculationPerformed(calculation=performed, client_id=client_id, occurred_at=NOW)


async def open_stream(
    bus: MemoryEventBus,
    who: Principal,
    command: StreamEventsCommand | None = None,
    clock: FakeClock | None = None,
) -> EventStream:
    use_case = stream_events(bus, clock)
    return await use_case.execute(who, command or StreamEventsCommand())


async def publish_all(bus: MemoryEventBus, events: list[Event]) -> list[str]:
    return [await bus.publish(event) for event in events]


async def received(stream: EventStream) -> list[Event]:
    return [record.event for record in await next_events(stream)]


@pytest.mark.parametrize("scopes", [set(), {"calculator"}])
async def test_without_the_sse_scope_it_is_refused_and_subscribes_nothing(
    scopes: set[str],
) -> None:
    bus = MemoryEventBus()
    with pytest.raises(InsufficientScope) as refused:
        await open_stream(bus, principal(scopes=scopes))
    assert refused.value.scope == "sse"
    assert bus.subscriber_count == 0


async def test_a_subscriber_sees_broadcasts_and_its_own_calculations_only() -> None:
    bus = MemoryEventBus()
    alices = await open_stream(bus, principal("alice"))
    bobs = await open_stream(bus, principal("bob"))
    hello, mine, theirs = broadcast("hello"), calculation("alice"), calculation("bob")
    await publish_all(bus, [hello, mine, theirs, broadcast("bye")])
    assert await received(alices) == [hello, mine, broadcast("bye")]
    assert await received(bobs) == [hello, theirs, broadcast("bye")]


@pytest.mark.parametrize(
    ("types", "kept"),
    [
        (frozenset({EventType.CALCULATION}), [1]),
        (frozenset({EventType.BROADCAST}), [0, 3]),
        (frozenset(EventType), [0, 1, 3]),
        (None, [0, 1, 3]),
    ],
)
async def test_types_select_the_events_received(
    types: frozenset[EventType] | None, kept: list[int]
) -> None:
    bus = MemoryEventBus()
    stream = await open_stream(bus, principal("alice"), StreamEventsCommand(types=types))
    events: list[Event] = [broadcast("a"), calculation("alice"), calculation("bob"), broadcast("b")]
    await publish_all(bus, events)
    assert await received(stream) == [events[index] for index in kept]


async def test_the_stream_ends_once_the_token_expires() -> None:
    bus, clock = MemoryEventBus(), FakeClock(NOW)
    stream = await open_stream(bus, principal("alice", expires_at=NOW + 60), clock=clock)
    assert await stream.next_batch(0.01) == ()
    clock.advance(59)
    await bus.publish(broadcast("still in time"))
    assert await received(stream) == [broadcast("still in time")]
    await bus.publish(broadcast("too late"))
    clock.advance(1)
    with pytest.raises(StreamEnded) as ended:
        await stream.next_batch(1.0)
    assert ended.value.reason == "token_expired"


async def test_a_bus_shutdown_ends_the_stream_resumably() -> None:
    bus = MemoryEventBus()
    stream = await open_stream(bus, principal("alice"))
    bus.close()
    with pytest.raises(StreamEnded) as ended:
        await stream.next_batch(1.0)
    assert (ended.value.reason, ended.value.retry) == ("shutdown", True)


async def test_a_resuming_subscriber_is_replayed_exactly_what_it_missed_once() -> None:
    bus = MemoryEventBus()
    first = await open_stream(bus, principal("alice"))
    [seen_id] = await publish_all(bus, [broadcast("seen")])
    [record] = await next_events(first)
    assert record.id == seen_id
    first.close()
    missed: list[Event] = [calculation("alice", "2"), broadcast("missed")]
    await publish_all(bus, [missed[0], calculation("bob"), missed[1]])

    resumed = await open_stream(bus, principal("alice"), StreamEventsCommand(last_event_id=seen_id))
    assert not resumed.gap
    assert await received(resumed) == missed
    await bus.publish(broadcast("live"))
    assert await received(resumed) == [broadcast("live")]
    assert await resumed.next_batch(0.01) == ()


async def test_resuming_from_an_unknown_id_reports_a_gap_and_replays_the_log() -> None:
    bus = MemoryEventBus()
    events: list[Event] = [broadcast("a"), calculation("bob"), calculation("alice")]
    await publish_all(bus, events)
    resumed = await open_stream(bus, principal("alice"), StreamEventsCommand(last_event_id="0-1"))
    assert resumed.gap
    assert await received(resumed) == [events[0], events[2]]


async def test_closing_a_stream_unsubscribes_it() -> None:
    bus = MemoryEventBus()
    stream = await open_stream(bus, principal("alice"))
    assert bus.subscriber_count == 1
    stream.close()
    assert bus.subscriber_count == 0
    with pytest.raises(StreamEnded) as ended:
        await stream.next_batch(1.0)
    assert ended.value.reason == "closed"


# --- limits --------------------------------------------------------------------------------


async def test_past_the_per_client_limit_a_stream_is_refused_and_subscribes_nothing() -> None:
    bus, slots = MemoryEventBus(), MemoryStreamSlots(max_streams=10, max_per_client=2)
    use_case = stream_events(bus, slots=slots)
    first = await use_case.execute(principal("alice"), StreamEventsCommand())
    await use_case.execute(principal("alice"), StreamEventsCommand())
    with pytest.raises(TooManyStreams) as refused:
        await use_case.execute(principal("alice"), StreamEventsCommand())
    assert refused.value.per_client
    assert refused.value.retry_after > 0
    assert bus.subscriber_count == 2
    await use_case.execute(principal("bob"), StreamEventsCommand())  # another client may
    first.close()
    await use_case.execute(principal("alice"), StreamEventsCommand())  # a slot came back
    assert slots.open_streams == 3


async def test_past_the_total_limit_every_client_is_refused() -> None:
    bus, slots = MemoryEventBus(), MemoryStreamSlots(max_streams=2, max_per_client=2)
    use_case = stream_events(bus, slots=slots)
    await use_case.execute(principal("alice"), StreamEventsCommand())
    await use_case.execute(principal("bob"), StreamEventsCommand())
    with pytest.raises(TooManyStreams) as refused:
        await use_case.execute(principal("carol"), StreamEventsCommand())
    assert not refused.value.per_client
    assert bus.subscriber_count == 2


async def test_a_refused_scope_takes_no_slot() -> None:
    slots = MemoryStreamSlots(max_streams=1, max_per_client=1)
    use_case = stream_events(MemoryEventBus(), slots=slots)
    with pytest.raises(InsufficientScope):
        await use_case.execute(principal(scopes={"calculator"}), StreamEventsCommand())
    assert slots.open_streams == 0


async def test_closing_a_stream_gives_its_slot_back_once_and_unsubscribes() -> None:
    bus, slots = MemoryEventBus(), MemoryStreamSlots(max_streams=5, max_per_client=5)
    use_case = stream_events(bus, slots=slots)
    kept = await use_case.execute(principal("alice"), StreamEventsCommand())
    ended = await use_case.execute(principal("alice"), StreamEventsCommand())
    ended.close()
    ended.close()
    assert slots.open_streams == 1
    assert bus.subscriber_count == 1
    kept.close()
    assert slots.open_streams == 0


@pytest.mark.parametrize("ending", ["overflow", "shutdown", "token_expired", "revoked"])
async def test_a_stream_the_server_ends_gives_its_slot_back(ending: str) -> None:
    bus, slots = MemoryEventBus(queue_size=1), MemoryStreamSlots(max_streams=5, max_per_client=5)
    revocations, clock = MemoryRevocationList(), FakeClock(time.time())
    use_case = stream_events(bus, clock, slots=slots, revocations=revocations)
    alice = principal("alice", expires_at=clock.now() + 60)
    stream = await use_case.execute(alice, StreamEventsCommand())
    if ending == "overflow":
        await publish_all(bus, [broadcast("1"), broadcast("2")])
    elif ending == "shutdown":
        bus.close()
    elif ending == "token_expired":
        clock.advance(60)
    else:
        await revocations.revoke(alice.token_id, alice.expires_at)

    with pytest.raises(StreamEnded) as ended:
        await stream.next_batch(1.0)

    assert ended.value.reason == ending
    assert slots.open_streams == 0
    assert bus.subscriber_count == 0


async def test_a_failed_subscription_gives_the_slot_back() -> None:
    class BrokenBus(MemoryEventBus):
        async def subscribe(self, *, after: str | None, wants: object) -> object:  # type: ignore[override]
            raise ConnectionError("the bus is down")

    slots = MemoryStreamSlots(max_streams=1, max_per_client=1)
    use_case = stream_events(BrokenBus(), slots=slots)
    with pytest.raises(ConnectionError):
        await use_case.execute(principal("alice"), StreamEventsCommand())
    assert slots.open_streams == 0


# --- revocation ----------------------------------------------------------------------------


async def test_a_revoked_token_ends_its_stream_at_the_next_check() -> None:
    bus, revocations = MemoryEventBus(), MemoryRevocationList()
    use_case = stream_events(bus, revocations=revocations, check_every=0.05)
    alice = principal("alice", expires_at=time.time() + 3600)  # the revocation list's clock
    stream = await use_case.execute(alice, StreamEventsCommand())
    others = await use_case.execute(principal("bob"), StreamEventsCommand())
    await bus.publish(broadcast("before"))
    assert await received(stream) == [broadcast("before")]

    await revocations.revoke(alice.token_id, alice.expires_at)
    with pytest.raises(StreamEnded) as ended:
        await stream.next_batch(60.0)

    assert ended.value.reason == "revoked"
    assert ended.value.retry
    assert "revoked" in str(ended.value)
    assert bus.subscriber_count == 1
    await bus.publish(broadcast("after"))
    assert await received(others) == [broadcast("before"), broadcast("after")]


async def test_a_long_wait_checks_the_token_every_interval() -> None:
    bus, revocations = MemoryEventBus(), MemoryRevocationList()
    use_case = stream_events(bus, revocations=revocations, check_every=0.05)
    alice = principal("alice", expires_at=time.time() + 3600)  # the revocation list's clock
    stream = await use_case.execute(alice, StreamEventsCommand())

    async def revoke_soon() -> None:
        await anyio.sleep(0.1)
        await revocations.revoke(alice.token_id, alice.expires_at)

    async def how_it_ends() -> str:
        try:
            await stream.next_batch(60.0)
        except StreamEnded as ended:
            return ended.reason
        return "it did not end"

    with anyio.fail_after(2.0):
        async with anyio.create_task_group() as group:
            group.start_soon(revoke_soon)
            reason = await how_it_ends()

    assert reason == "revoked"


async def test_periodic_checks_do_not_cut_a_wait_short() -> None:
    use_case = stream_events(MemoryEventBus(), check_every=0.02)
    stream = await use_case.execute(principal("alice"), StreamEventsCommand())

    started = time.monotonic()
    assert await stream.next_batch(0.2) == ()

    assert time.monotonic() - started >= 0.18


async def test_a_wake_ends_a_wait_early() -> None:
    use_case = stream_events(MemoryEventBus(), check_every=0.02)
    stream = await use_case.execute(principal("alice"), StreamEventsCommand())

    async def wake_soon() -> None:
        await anyio.sleep(0.05)
        stream.wake()

    started = time.monotonic()
    async with anyio.create_task_group() as group:
        group.start_soon(wake_soon)
        assert await stream.next_batch(10.0) == ()

    assert time.monotonic() - started < 1.0
