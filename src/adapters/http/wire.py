"""The JSON shapes this adapter writes, and the encoder that writes decimals as JSON numbers.

Litestar would write a ``Decimal`` as a JSON string; the calculator's contract is a JSON number
written from the exact decimal, so these bodies are encoded here with ``decimal_format="number"``.
"""

from __future__ import annotations

from decimal import Decimal

import msgspec

from src.adapters.wire import encoder
from src.domain.calculator import Calculation

__all__ = ["CalculationBody", "TokenResponse", "calculation_body", "encoder"]


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


def calculation_body(calculation: Calculation) -> CalculationBody:
    """The REST representation of a calculation."""
    return CalculationBody(
        operation=calculation.operation.value,
        a=calculation.a,
        b=calculation.b,
        result=calculation.result,
    )
