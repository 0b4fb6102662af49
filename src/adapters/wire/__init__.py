"""The JSON shapes of domain events, shared by every transport that carries them (SSE, MCP).

Decimals are written as JSON numbers from the exact value (``decimal_format="number"``).
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import assert_never

import msgspec

from src.domain.events import CalculationPerformed, Event, MessageBroadcast

encoder = msgspec.json.Encoder(decimal_format="number")


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
