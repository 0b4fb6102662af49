"""StreamEvents: who sees what, type filters, resumption, and how a stream ends."""

from __future__ import annotations

import pytest

from src.adapters.memory.event_bus import MemoryEventBus
from src.application.errors import InsufficientScope, StreamEnded
from src.application.security import Principal
from src.application.stream_events import EventStream, StreamEvents, StreamEventsCommand
from src.domain.calculator import Calculator, Operation
from src.domain.events import CalculationPerformed, Event, EventType, MessageBroadcast
from tests.application.fakes import NOW, FakeClock, next_events, principal

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
    use_case = StreamEvents(events=bus, clock=clock or FakeClock(NOW))
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
