"""What the Redis adapters store: msgpack shapes of domain objects, and stream ids.

The adapter owns this format. Every field of a domain event is kept, decimals as their exact text
(msgspec writes a ``Decimal`` as a string in msgpack), times as 64-bit floats, so decoding gives
back an equal event. Structs are array-like: field names are not repeated in every entry.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import assert_never

import msgspec

from src.application.ports.streams import TicketGrant
from src.application.security import Principal
from src.domain.calculator import Calculation, Operation
from src.domain.events import CalculationPerformed, Event, MessageBroadcast

_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})", re.ASCII)
_U64 = 2**64


class _Broadcast(msgspec.Struct, tag="b", array_like=True):
    message: str
    sender: str
    occurred_at: float


class _Calculation(msgspec.Struct, tag="c", array_like=True):
    operation: str
    a: Decimal
    b: Decimal
    result: Decimal
    client_id: str
    occurred_at: float


class _Grant(msgspec.Struct, array_like=True):
    client_id: str
    scopes: list[str]
    token_id: str
    token_expires_at: float
    resource: str
    expires_at: float


_encoder = msgspec.msgpack.Encoder()
_events = msgspec.msgpack.Decoder(_Broadcast | _Calculation)
_grants = msgspec.msgpack.Decoder(_Grant)


def encode_event(event: Event) -> bytes:
    """The stored form of ``event``."""
    match event:
        case MessageBroadcast():
            return _encoder.encode(_Broadcast(event.message, event.sender, event.occurred_at))
        case CalculationPerformed(calculation=calc):
            shape = _Calculation(
                calc.operation.value,
                calc.a,
                calc.b,
                calc.result,
                event.client_id,
                event.occurred_at,
            )
            return _encoder.encode(shape)
        case _:
            assert_never(event)


def decode_event(data: bytes) -> Event:
    """The event stored as ``data``.

    Raises:
        ValueError: ``data`` is not an event this adapter wrote (``msgspec.DecodeError`` is one).
    """
    shape = _events.decode(data)
    if isinstance(shape, _Broadcast):
        return MessageBroadcast(
            message=shape.message, sender=shape.sender, occurred_at=shape.occurred_at
        )
    calculation = Calculation(
        operation=Operation(shape.operation), a=shape.a, b=shape.b, result=shape.result
    )
    return CalculationPerformed(
        calculation=calculation, client_id=shape.client_id, occurred_at=shape.occurred_at
    )


def parse_stream_id(text: str) -> tuple[int, int] | None:
    """``(milliseconds, sequence)`` of a Redis stream id ``"<ms>-<seq>"``, or ``None``.

    Anything else, including parts past 64 bits (Redis's own bound), is not an id of ours.
    """
    match = _STREAM_ID.fullmatch(text)
    if match is None:
        return None
    ms, seq = int(match[1]), int(match[2])
    return (ms, seq) if ms < _U64 and seq < _U64 else None


def id_order(event_id: str | None) -> tuple[int, int]:
    """Where a stream id sorts; anything that is not one sorts first."""
    return parse_stream_id(event_id or "") or (0, 0)


def encode_grant(grant: TicketGrant) -> bytes:
    """The stored form of a stream ticket's grant."""
    who = grant.principal
    shape = _Grant(
        client_id=who.client_id,
        scopes=sorted(who.scopes),
        token_id=who.token_id,
        token_expires_at=who.expires_at,
        resource=grant.resource,
        expires_at=grant.expires_at,
    )
    return _encoder.encode(shape)


def decode_grant(data: bytes) -> TicketGrant:
    """The grant stored as ``data``."""
    shape = _grants.decode(data)
    principal = Principal(
        client_id=shape.client_id,
        scopes=frozenset(shape.scopes),
        token_id=shape.token_id,
        expires_at=shape.token_expires_at,
    )
    return TicketGrant(principal=principal, resource=shape.resource, expires_at=shape.expires_at)
