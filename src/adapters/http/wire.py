"""The JSON shapes this adapter writes, and the encoder that writes decimals as JSON numbers.

Litestar would write a ``Decimal`` as a JSON string; the calculator's contract is a JSON number
written from the exact decimal, so these bodies are encoded here with ``decimal_format="number"``.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import assert_never

import msgspec

from src.domain.calculator import Calculation
from src.domain.events import CalculationPerformed, Event, MessageBroadcast

encoder = msgspec.json.Encoder(decimal_format="number")


class CalculationBody(msgspec.Struct):
    """A calculator response."""

    operation: str
    a: Decimal
    b: Decimal
    result: Decimal


class TokenResponse(msgspec.Struct):
    """An RFC 6749 §5.1 access token response."""

    access_token: str
    token_type: str
    expires_in: int
    scope: str


class BroadcastData(msgspec.Struct, tag="broadcast", tag_field="type"):
    """The ``data`` of a broadcast event."""

    message: str
    sender: str
    occurred_at: datetime.datetime


class CalculationData(msgspec.Struct, tag="calculation", tag_field="type"):
    """The ``data`` of a calculation event."""

    operation: str
    a: Decimal
    b: Decimal
    result: Decimal
    client_id: str
    occurred_at: datetime.datetime


def calculation_body(calculation: Calculation) -> CalculationBody:
    """The REST representation of a calculation."""
    return CalculationBody(
        operation=calculation.operation.value,
        a=calculation.a,
        b=calculation.b,
        result=calculation.result,
    )


def event_data(event: Event) -> BroadcastData | CalculationData:
    """The JSON ``data`` of an event."""
    at = datetime.datetime.fromtimestamp(event.occurred_at, tz=datetime.UTC)
    match event:
        case MessageBroadcast():
            return BroadcastData(message=event.message, sender=event.sender, occurred_at=at)
        case CalculationPerformed(calculation=calc):
            return CalculationData(
                operation=calc.operation.value,
                a=calc.a,
                b=calc.b,
                result=calc.result,
                client_id=event.client_id,
                occurred_at=at,
            )
        case _:
            assert_never(event)
