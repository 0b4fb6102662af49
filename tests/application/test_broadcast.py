"""Broadcast: needs the sse scope, validates the message, and reaches every client's stream."""

from __future__ import annotations

import pytest

from src.adapters.memory.event_bus import MemoryEventBus
from src.application.broadcast import Broadcast, BroadcastCommand
from src.application.errors import InsufficientScope
from src.application.stream_events import StreamEventsCommand
from src.domain.errors import InvalidMessage
from src.domain.events import MAX_MESSAGE_LENGTH, MessageBroadcast
from tests.application.fakes import NOW, FakeClock, next_events, principal, stream_events

pytestmark = pytest.mark.anyio


@pytest.fixture
def bus() -> MemoryEventBus:
    return MemoryEventBus()


def broadcast(bus: MemoryEventBus) -> Broadcast:
    return Broadcast(events=bus, clock=FakeClock(NOW))


async def test_without_the_sse_scope_it_is_refused_and_publishes_nothing(
    bus: MemoryEventBus,
) -> None:
    seen = await bus.subscribe(after=None, wants=lambda _: True)
    with pytest.raises(InsufficientScope) as refused:
        await broadcast(bus).execute(
            principal(scopes={"calculator"}), BroadcastCommand(message="hello")
        )
    assert refused.value.scope == "sse"
    receipt = await broadcast(bus).execute(principal(), BroadcastCommand(message="after"))
    assert [record.id for record in await next_events(seen)] == [receipt.event_id]


@pytest.mark.parametrize("message", ["", "x" * (MAX_MESSAGE_LENGTH + 1)])
async def test_an_invalid_message_is_refused_and_publishes_nothing(
    bus: MemoryEventBus, message: str
) -> None:
    seen = await bus.subscribe(after=None, wants=lambda _: True)
    with pytest.raises(InvalidMessage):
        await broadcast(bus).execute(principal(), BroadcastCommand(message=message))
    receipt = await broadcast(bus).execute(principal(), BroadcastCommand(message="after"))
    assert [record.id for record in await next_events(seen)] == [receipt.event_id]


async def test_every_clients_stream_receives_the_broadcast(bus: MemoryEventBus) -> None:
    streams = stream_events(bus)
    subscribers = [
        await streams.execute(principal(client_id), StreamEventsCommand())
        for client_id in ("alice", "bob", "carol")
    ]
    receipt = await broadcast(bus).execute(
        principal("bob", {"sse"}), BroadcastCommand(message="hello, everyone")
    )
    expected = MessageBroadcast(message="hello, everyone", sender="bob", occurred_at=NOW)
    for stream in subscribers:
        [record] = await next_events(stream)
        assert (record.id, record.event) == (receipt.event_id, expected)
