"""Calculate: needs the calculator scope, computes exactly, and tells only the caller's streams."""

from __future__ import annotations

from decimal import Decimal

import pytest

from src.adapters.memory.event_bus import MemoryEventBus
from src.application.calculate import Calculate, CalculateCommand
from src.application.errors import InsufficientScope
from src.application.ports import Subscription
from src.application.stream_events import StreamEventsCommand
from src.domain.calculator import Calculator, Operation
from src.domain.errors import DivisionByZero, DomainError, InvalidOperand, OperandOutOfRange
from src.domain.events import CalculationPerformed, MessageBroadcast
from tests.application.fakes import NOW, FakeClock, next_events, principal, stream_events

pytestmark = pytest.mark.anyio


@pytest.fixture
def bus() -> MemoryEventBus:
    return MemoryEventBus()


def calculate(bus: MemoryEventBus) -> Calculate:
    return Calculate(calculator=Calculator(), events=bus, clock=FakeClock(NOW))


async def assert_nothing_published_before_marker(bus: MemoryEventBus, seen: Subscription) -> None:
    """Publish a marker: if it is the first thing ``seen`` receives, nothing came before it."""
    marker = MessageBroadcast(message="marker", sender="test", occurred_at=NOW)
    await bus.publish(marker)
    assert [record.event for record in await next_events(seen)] == [marker]


def add(a: str = "1", b: str = "2") -> CalculateCommand:
    return CalculateCommand(operation=Operation.ADD, a=a, b=b)


@pytest.mark.parametrize("scopes", [set(), {"sse"}, {"calculator:read"}])
async def test_without_the_calculator_scope_it_is_refused_and_publishes_nothing(
    bus: MemoryEventBus, scopes: set[str]
) -> None:
    seen = await bus.subscribe(after=None, wants=lambda _: True)
    with pytest.raises(InsufficientScope) as refused:
        await calculate(bus).execute(principal(scopes=scopes), add())
    assert refused.value.scope == "calculator"
    await assert_nothing_published_before_marker(bus, seen)


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (CalculateCommand(operation=Operation.DIVIDE, a="1", b="0"), DivisionByZero),
        (add(a="NaN"), InvalidOperand),
        (add(b="1e1001"), OperandOutOfRange),
    ],
)
async def test_a_domain_refusal_propagates_and_publishes_nothing(
    bus: MemoryEventBus, command: CalculateCommand, error: type[DomainError]
) -> None:
    seen = await bus.subscribe(after=None, wants=lambda _: True)
    with pytest.raises(error):
        await calculate(bus).execute(principal(scopes={"calculator"}), command)
    await assert_nothing_published_before_marker(bus, seen)


async def test_it_returns_the_exact_result(bus: MemoryEventBus) -> None:
    calculation = await calculate(bus).execute(principal(), add("0.1", "0.2"))
    assert calculation.result == Decimal("0.3")
    assert (calculation.a, calculation.b) == (Decimal("0.1"), Decimal("0.2"))


async def test_it_publishes_the_calculation_for_the_caller(bus: MemoryEventBus) -> None:
    seen = await bus.subscribe(after=None, wants=lambda _: True)
    calculation = await calculate(bus).execute(
        principal("alice"), CalculateCommand(operation=Operation.MULTIPLY, a="1.1", b="1.1")
    )
    [record] = await next_events(seen)
    assert record.event == CalculationPerformed(
        calculation=calculation, client_id="alice", occurred_at=NOW
    )


async def test_only_the_same_clients_stream_sees_the_calculation(bus: MemoryEventBus) -> None:
    streams = stream_events(bus)
    alices = await streams.execute(principal("alice"), StreamEventsCommand())
    bobs = await streams.execute(principal("bob"), StreamEventsCommand())
    calculation = await calculate(bus).execute(principal("alice", {"calculator"}), add())
    [record] = await next_events(alices)
    assert isinstance(record.event, CalculationPerformed)
    assert record.event.calculation == calculation
    await assert_nothing_published_before_marker(bus, bobs)
