"""Exact decimal arithmetic with bounds that keep every operation cheap.

Operands are parsed from their text straight into :class:`decimal.Decimal`, never through
``float``, so ``0.1 + 0.2`` is exactly ``0.3``. Within the :class:`CalculatorLimits` bounds,
addition, subtraction and multiplication are exact (the context's precision is large enough, and
``Inexact`` is trapped to prove it); division rounds half-even to ``division_digits`` significant
digits.
"""

from __future__ import annotations

import decimal
import enum
import re
from dataclasses import dataclass
from decimal import Decimal

from src.domain.errors import DivisionByZero, InvalidOperand, OperandOutOfRange, UnknownOperation

# A JSON-number-like syntax in ASCII only: Decimal() alone would also accept "NaN", "Infinity",
# "1_000", surrounding whitespace and non-ASCII digits, none of which a client should rely on.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_NON_FINITE = re.compile(r"[+-]?(?:s?nan\d*|inf|infinity)", re.IGNORECASE)


class Operation(enum.StrEnum):
    """The four operations the calculator performs."""

    ADD = "add"
    SUBTRACT = "subtract"
    MULTIPLY = "multiply"
    DIVIDE = "divide"

    @classmethod
    def parse(cls, name: str) -> Operation:
        """Return the operation called ``name`` or refuse it."""
        try:
            return cls(name)
        except ValueError:
            known = ", ".join(op.value for op in cls)
            raise UnknownOperation(f"unknown operation; expected one of: {known}") from None


@dataclass(frozen=True, slots=True, kw_only=True)
class CalculatorLimits:
    """Bounds on operands and the precision of division.

    Attributes:
        max_digits: most significant digits an operand may have (trailing zeros not counted).
        max_exponent: largest magnitude of an operand's adjusted exponent (the power of ten of
            its leading digit): non-zero operands lie within ``1e-max_exponent`` and
            ``1e+max_exponent`` in magnitude, give or take the leading digit.
        max_text_length: longest operand text accepted, checked before any parsing.
        division_digits: significant digits a quotient is rounded to (half-even).
    """

    max_digits: int = 50
    max_exponent: int = 1000
    max_text_length: int = 200
    division_digits: int = 34

    def __post_init__(self) -> None:
        if min(self.max_digits, self.max_exponent, self.max_text_length) < 1:
            raise ValueError("calculator limits must be positive")
        if not 1 <= self.division_digits <= 1000:
            raise ValueError("division_digits must be between 1 and 1000")

    @property
    def exact_digits(self) -> int:
        """A precision that holds every exact sum, difference and product of two valid operands.

        A sum spans from the highest leading digit (``10**max_exponent``, one more for a carry) down
        to the lowest written digit, at most ``max_text_length`` places below ``10**-max_exponent``;
        a product has at most ``2 * max_text_length`` digits, which is less.
        """
        return 2 * self.max_exponent + 2 * self.max_text_length + 2


@dataclass(frozen=True, slots=True, kw_only=True)
class Calculation:
    """One operation performed: its operands and exact (or correctly rounded) result."""

    operation: Operation
    a: Decimal
    b: Decimal
    result: Decimal


class Calculator:
    """Performs operations within :class:`CalculatorLimits`; refusals are :class:`DomainError`."""

    __slots__ = ("_division", "_exact", "limits")

    def __init__(self, limits: CalculatorLimits | None = None) -> None:
        self.limits = limits or CalculatorLimits()
        emax = 4 * (self.limits.max_exponent + self.limits.max_text_length)
        traps = [decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow]
        self._exact = decimal.Context(
            prec=self.limits.exact_digits, Emax=emax, Emin=-emax, traps=[*traps, decimal.Inexact]
        )
        self._division = decimal.Context(
            prec=self.limits.division_digits,
            rounding=decimal.ROUND_HALF_EVEN,
            Emax=emax,
            Emin=-emax,
            traps=traps,
        )

    def parse(self, text: str, *, name: str = "operand") -> Decimal:
        """Parse an operand's text into an exact decimal, or refuse it with a clear message."""
        limits = self.limits
        if len(text) > limits.max_text_length:
            raise OperandOutOfRange(f"{name} is longer than {limits.max_text_length} characters")
        if not _NUMBER.fullmatch(text):
            if _NON_FINITE.fullmatch(text):
                raise InvalidOperand(f"{name} must be a finite number, not NaN or infinity")
            raise InvalidOperand(f"{name} is not a decimal number (e.g. 42, -1.5, 6.02e23)")
        try:
            value = Decimal(text)
        except decimal.InvalidOperation:  # an exponent beyond what the decimal module can hold
            raise self._out_of_range(name) from None
        coefficient = value.as_tuple().digits
        if coefficient[-1] == 0:
            if value.is_zero():
                return Decimal(0)
            coefficient = _without_trailing_zeros(coefficient)
        digits = len(coefficient)
        if digits > limits.max_digits:
            raise OperandOutOfRange(
                f"{name} has {digits} significant digits; at most {limits.max_digits} are accepted"
            )
        if abs(value.adjusted()) > limits.max_exponent:
            raise self._out_of_range(name)
        return value

    def calculate(self, operation: Operation, a: Decimal, b: Decimal) -> Calculation:
        """Perform ``operation`` on two parsed operands."""
        if operation is Operation.DIVIDE:
            if b.is_zero():
                raise DivisionByZero("division by zero is undefined")
            result = self._division.divide(a, b)
        elif operation is Operation.ADD:
            result = self._exact.add(a, b)
        elif operation is Operation.SUBTRACT:
            result = self._exact.subtract(a, b)
        else:
            result = self._exact.multiply(a, b)
        if result.is_zero():
            result = Decimal(0)  # one zero on the wire: never "-0" or "0E-7"
        return Calculation(operation=operation, a=a, b=b, result=result)

    def evaluate(self, operation: Operation, a: str, b: str) -> Calculation:
        """Parse both operands' text and perform ``operation``."""
        return self.calculate(operation, self.parse(a, name="a"), self.parse(b, name="b"))

    def _out_of_range(self, name: str) -> OperandOutOfRange:
        bound = self.limits.max_exponent
        return OperandOutOfRange(
            f"{name} must be zero or between 1e-{bound} and 1e+{bound} in magnitude"
        )


def _without_trailing_zeros(digits: tuple[int, ...]) -> tuple[int, ...]:
    end = len(digits)
    while end > 1 and digits[end - 1] == 0:
        end -= 1
    return digits[:end]
