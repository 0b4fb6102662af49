"""Refusals the domain raises: each carries a message that is safe to show a client."""


class DomainError(Exception):
    """Base of every refusal the domain makes; the message is client-safe."""


class InvalidOperand(DomainError):
    """An operand is not a finite decimal number in the accepted syntax."""


class OperandOutOfRange(DomainError):
    """An operand has more digits or a larger exponent than the calculator accepts."""


class DivisionByZero(DomainError):
    """The divisor is zero."""


class UnknownOperation(DomainError):
    """The operation is not one the calculator performs."""


class InvalidMessage(DomainError):
    """A broadcast message is empty or too long."""


class UnknownEventType(DomainError):
    """An event type filter names a type that does not exist."""
