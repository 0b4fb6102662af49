"""Domain events: message bounds, event types, and who each event is for."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from src.domain.calculator import Calculation, Operation
from src.domain.errors import DomainError, InvalidMessage, UnknownEventType
from src.domain.events import (
    EVERYONE,
    MAX_MESSAGE_LENGTH,
    Audience,
    CalculationPerformed,
    EventType,
    MessageBroadcast,
)

client_ids = st.text(min_size=1, max_size=40)
CALCULATION = Calculation(
    operation=Operation.ADD, a=Decimal("0.1"), b=Decimal("0.2"), result=Decimal("0.3")
)


def broadcast(message: str, sender: str = "alice") -> MessageBroadcast:
    return MessageBroadcast(message=message, sender=sender, occurred_at=0.0)


@pytest.mark.parametrize("message", ["", "x" * (MAX_MESSAGE_LENGTH + 1), "é" * 5000])
def test_an_empty_or_too_long_message_is_refused(message: str) -> None:
    with pytest.raises(InvalidMessage):
        broadcast(message)


def test_invalid_message_is_a_domain_error() -> None:
    assert issubclass(InvalidMessage, DomainError)
    assert issubclass(UnknownEventType, DomainError)


@pytest.mark.parametrize(
    "message", ["x", "x" * MAX_MESSAGE_LENGTH, "\U0001f600" * MAX_MESSAGE_LENGTH]
)
def test_messages_up_to_the_bound_in_characters_are_accepted(message: str) -> None:
    assert broadcast(message).message == message


@given(st.text(min_size=1, max_size=300))
def test_any_non_empty_message_within_the_bound_is_accepted(message: str) -> None:
    assert broadcast(message).message == message


@given(client_ids)
def test_everyone_admits_any_client(client_id: str) -> None:
    assert EVERYONE.admits(client_id)
    assert Audience().admits(client_id)


@given(client_ids, client_ids)
def test_a_client_audience_admits_that_client_only(owner: str, reader: str) -> None:
    assert Audience(owner).admits(reader) == (owner == reader)
    assert Audience(owner).admits(owner)


@given(client_ids, client_ids)
def test_a_broadcast_is_for_every_client(sender: str, reader: str) -> None:
    event = broadcast("hello", sender=sender)
    assert event.audience == EVERYONE
    assert event.audience.admits(reader)
    assert event.type is EventType.BROADCAST


@given(client_ids, client_ids)
def test_a_calculation_is_only_for_the_client_that_performed_it(owner: str, reader: str) -> None:
    event = CalculationPerformed(calculation=CALCULATION, client_id=owner, occurred_at=0.0)
    assert event.audience.admits(owner)
    assert event.audience.admits(reader) == (owner == reader)
    assert event.type is EventType.CALCULATION


@pytest.mark.parametrize("name", ["broadcast", "calculation"])
def test_known_event_types_parse(name: str) -> None:
    assert EventType.parse(name).value == name


@pytest.mark.parametrize("name", ["", "Broadcast", "calculations", " broadcast", "message"])
def test_unknown_event_types_are_refused(name: str) -> None:
    with pytest.raises(UnknownEventType):
        EventType.parse(name)
