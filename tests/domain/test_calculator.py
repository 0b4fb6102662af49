"""Calculator: exact laws, agreement with Fraction, correctly rounded division, and refusals."""

from __future__ import annotations

import contextlib
import time
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from src.domain.calculator import Calculator, CalculatorLimits, Operation
from src.domain.errors import (
    DivisionByZero,
    DomainError,
    InvalidOperand,
    OperandOutOfRange,
    UnknownOperation,
)

LIMITS = CalculatorLimits()
CALCULATOR = Calculator(LIMITS)
LARGEST = "9." + "9" * (LIMITS.max_digits - 1) + f"e{LIMITS.max_exponent}"
SMALLEST = f"1e-{LIMITS.max_exponent}"
EXTREMES = [LARGEST, "-" + LARGEST, SMALLEST, "-" + SMALLEST, "1e1000", "-9.99e-1000", "0"]
ZEROS = ["0", "-0", "+0.000", "0e5", "-0.0e-7", ".0", "0."]


@st.composite
def operand_texts(draw: st.DrawFn, limits: CalculatorLimits = LIMITS) -> str:
    """Operand text within the limits, written in one of the accepted forms.

    Built from a coefficient, some trailing zeros (which do not count as significant digits) and
    the adjusted exponent, so that the digit and exponent bounds are reached.
    """
    if draw(st.booleans()) and draw(st.booleans()):
        return draw(st.sampled_from(EXTREMES + ZEROS))
    sign = draw(st.sampled_from(["", "-", "+"]))
    coefficient = str(draw(st.integers(1, 10**limits.max_digits - 1)))
    coefficient += "0" * draw(st.integers(0, 30))
    adjusted = draw(st.integers(-limits.max_exponent, limits.max_exponent))
    form = draw(st.sampled_from(["scientific", "point", "plain"]))
    if form == "point":
        return f"{sign}{coefficient[0]}.{coefficient[1:]}E{adjusted:+d}"
    exponent = adjusted - (len(coefficient) - 1)
    plain = f"{sign}{Decimal(f'{coefficient}e{exponent}'):f}"
    if form == "plain" and len(plain) <= limits.max_text_length:
        return plain
    return f"{sign}{coefficient}e{exponent}"


operands = operand_texts().map(CALCULATOR.parse)
non_zero = operands.filter(lambda value: not value.is_zero())


def result(operation: Operation, a: Decimal, b: Decimal, calc: Calculator = CALCULATOR) -> Decimal:
    return calc.calculate(operation, a, b).result


def floor_log10(x: Fraction) -> int:
    """The exponent of the leading digit of ``x`` (> 0), computed exactly."""
    e = (x.numerator.bit_length() - x.denominator.bit_length()) * 3 // 10
    while Fraction(10) ** e > x:
        e -= 1
    while Fraction(10) ** (e + 1) <= x:
        e += 1
    return e


def rounded(x: Fraction, digits: int) -> Fraction:
    """``x`` rounded half-even to ``digits`` significant digits, exactly."""
    if x == 0:
        return x
    scale = Fraction(10) ** (digits - 1 - floor_log10(abs(x)))
    return Fraction(round(x * scale)) / scale


@given(operand_texts())
@example(LARGEST)
@example(SMALLEST)
@example("1" + "0" * 100 + "e-100")
def test_operands_within_the_limits_parse_to_their_exact_value(text: str) -> None:
    assert CALCULATOR.parse(text) == Decimal(text)


@given(operands, operands)
def test_addition_and_multiplication_commute(a: Decimal, b: Decimal) -> None:
    assert result(Operation.ADD, a, b) == result(Operation.ADD, b, a)
    assert result(Operation.MULTIPLY, a, b) == result(Operation.MULTIPLY, b, a)


@given(operands, operands, operands)
@example(Decimal(LARGEST), Decimal(LARGEST), Decimal(SMALLEST))
def test_addition_and_multiplication_associate(a: Decimal, b: Decimal, c: Decimal) -> None:
    for operation in (Operation.ADD, Operation.MULTIPLY):
        left = result(operation, result(operation, a, b), c)
        right = result(operation, a, result(operation, b, c))
        assert left == right


@given(operands, operands)
@example(Decimal(LARGEST), Decimal(SMALLEST))
@example(Decimal(SMALLEST), Decimal("-" + LARGEST))
def test_adding_then_subtracting_the_same_operand_gives_it_back(a: Decimal, b: Decimal) -> None:
    assert result(Operation.SUBTRACT, result(Operation.ADD, a, b), b) == a


@given(operands, operands)
@example(Decimal(LARGEST), Decimal(LARGEST))
@example(Decimal(LARGEST), Decimal("-" + SMALLEST))
@example(Decimal(SMALLEST), Decimal(SMALLEST))
def test_add_subtract_multiply_agree_exactly_with_fractions(a: Decimal, b: Decimal) -> None:
    x, y = Fraction(a), Fraction(b)
    assert Fraction(result(Operation.ADD, a, b)) == x + y
    assert Fraction(result(Operation.SUBTRACT, a, b)) == x - y
    assert Fraction(result(Operation.MULTIPLY, a, b)) == x * y


@given(operands, non_zero)
@example(Decimal(LARGEST), Decimal(SMALLEST))
@example(Decimal(SMALLEST), Decimal(LARGEST))
@example(Decimal(1), Decimal(3))
def test_division_is_the_exact_quotient_correctly_rounded(a: Decimal, b: Decimal) -> None:
    quotient = result(Operation.DIVIDE, a, b)
    exact = Fraction(a) / Fraction(b)
    assert Fraction(quotient) == rounded(exact, LIMITS.division_digits)
    assert abs(Fraction(quotient) - exact) <= abs(exact) * Fraction(10) ** (
        1 - LIMITS.division_digits
    )


@given(st.integers(1, 60), operands, non_zero)
def test_division_yields_at_most_the_configured_significant_digits(
    digits: int, a: Decimal, b: Decimal
) -> None:
    calculator = Calculator(CalculatorLimits(division_digits=digits))
    quotient = result(Operation.DIVIDE, a, b, calculator)
    assert len(quotient.as_tuple().digits) <= digits
    assert Fraction(quotient) == rounded(Fraction(a) / Fraction(b), digits)


@pytest.mark.parametrize(
    ("operation", "a", "b", "expected", "digits"),
    [
        (Operation.ADD, "0.1", "0.2", "0.3", 34),
        (Operation.MULTIPLY, "1.1", "1.1", "1.21", 34),
        (Operation.SUBTRACT, "1", "0.9", "0.1", 34),
        (Operation.DIVIDE, "1", "3", "0." + "3" * 34, 34),
        (Operation.DIVIDE, "2", "3", "0." + "6" * 33 + "7", 34),
        (Operation.DIVIDE, "25", "10", "2", 1),
        (Operation.DIVIDE, "35", "10", "4", 1),
        (Operation.DIVIDE, "1", "8", "0.12", 2),
        (Operation.DIVIDE, "1e1000", "1e-1000", "1e2000", 34),
    ],
)
def test_known_results(operation: Operation, a: str, b: str, expected: str, digits: int) -> None:
    calculator = Calculator(CalculatorLimits(division_digits=digits))
    assert calculator.evaluate(operation, a, b).result == Decimal(expected)


@given(st.sampled_from(Operation), operands, operands)
@example(Operation.ADD, Decimal("-0"), Decimal("0"))
@example(Operation.SUBTRACT, Decimal("1.5"), Decimal("1.50"))
@example(Operation.MULTIPLY, Decimal("-1"), Decimal("0"))
@example(Operation.DIVIDE, Decimal("0"), Decimal("-5"))
@example(Operation.ADD, Decimal("0E-7"), Decimal("-0E-9"))
def test_a_zero_result_is_always_plain_zero(operation: Operation, a: Decimal, b: Decimal) -> None:
    if operation is Operation.DIVIDE and b.is_zero():
        return
    value = result(operation, a, b)
    if value.is_zero():
        assert not value.is_signed()
        assert str(value) == "0"


@pytest.mark.parametrize("zero", ZEROS)
def test_dividing_by_any_zero_is_refused(zero: str) -> None:
    with pytest.raises(DivisionByZero):
        CALCULATOR.evaluate(Operation.DIVIDE, "1", zero)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("nan", InvalidOperand),
        ("NaN", InvalidOperand),
        ("inf", InvalidOperand),
        ("-Infinity", InvalidOperand),
        ("sNaN", InvalidOperand),
        ("", InvalidOperand),
        ("1_000", InvalidOperand),
        (" 1", InvalidOperand),
        ("1 ", InvalidOperand),
        ("1\n", InvalidOperand),
        ("0x10", InvalidOperand),
        ("1e", InvalidOperand),
        ("--1", InvalidOperand),
        ("1" + "0" * 400, OperandOutOfRange),
        ("1e999999999", OperandOutOfRange),
        ("1e-999999999", OperandOutOfRange),
        ("1e" + "9" * 197, OperandOutOfRange),
        ("9" * 100_000, OperandOutOfRange),
        ("1e1001", OperandOutOfRange),
        ("9.9e-1001", OperandOutOfRange),
        ("1" * (LIMITS.max_digits + 1), OperandOutOfRange),
    ],
)
def test_bad_operands_are_refused(text: str, error: type[DomainError]) -> None:
    with pytest.raises(error):
        CALCULATOR.parse(text)


@pytest.mark.parametrize("text", ["\uff11", "\u0661\u0662", "1\u0966"])
def test_non_ascii_digits_are_refused(text: str) -> None:
    with pytest.raises(InvalidOperand):
        CALCULATOR.parse(text)


@given(st.integers(1, 10**LIMITS.max_digits - 1), st.integers(0, 5))
def test_one_significant_digit_too_many_is_out_of_range(coefficient: int, extra: int) -> None:
    text = f"{coefficient}{'7' * (LIMITS.max_digits + 1 - len(str(coefficient)))}{'0' * extra}"
    with pytest.raises(OperandOutOfRange):
        CALCULATOR.parse(text)


@given(st.integers(1, 9), st.integers(LIMITS.max_exponent + 1, 10**6), st.sampled_from("+-"))
def test_an_exponent_beyond_the_bound_is_out_of_range(digit: int, adjusted: int, sign: str) -> None:
    with pytest.raises(OperandOutOfRange):
        CALCULATOR.parse(f"{digit}e{sign}{adjusted}")


@pytest.mark.parametrize("text", ["9" * 100_000, "1e999999999", "1e" + "9" * 197])
def test_parsing_a_hostile_operand_is_cheap(text: str) -> None:
    started = time.perf_counter()
    with pytest.raises(OperandOutOfRange):
        CALCULATOR.parse(text)
    assert time.perf_counter() - started < 0.05


@given(st.text())
@example("\uff11")
@example("1e-99999999999999999999")
@example("0e999999999999999999999")
def test_parsing_any_text_succeeds_or_raises_a_domain_error(text: str) -> None:
    with contextlib.suppress(DomainError):
        CALCULATOR.parse(text)


@given(
    st.text(alphabet="0123456789+-.eEnaifINFsS _", max_size=30),
    st.text(alphabet="0123456789+-.eE", max_size=30),
    st.sampled_from(Operation),
)
def test_evaluating_number_like_text_succeeds_or_raises_a_domain_error(
    a: str, b: str, operation: Operation
) -> None:
    with contextlib.suppress(DomainError):
        CALCULATOR.evaluate(operation, a, b)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide"])
def test_known_operations_parse(name: str) -> None:
    assert Operation.parse(name).value == name


@pytest.mark.parametrize("name", ["", "ADD", "Add", " add", "pow", "modulo", "plus"])
def test_unknown_operations_are_refused(name: str) -> None:
    with pytest.raises(UnknownOperation):
        Operation.parse(name)


@pytest.mark.parametrize(
    "limits",
    [
        {"max_digits": 0},
        {"max_exponent": 0},
        {"max_text_length": -1},
        {"division_digits": 0},
        {"division_digits": 1001},
    ],
)
def test_limits_out_of_their_range_are_rejected(limits: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be"):
        CalculatorLimits(**limits)
