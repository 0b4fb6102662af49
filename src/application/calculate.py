"""Use case: perform a calculation and tell the caller's own subscribers about it."""

from __future__ import annotations

from dataclasses import dataclass

from src.application.ports import Clock, EventBus
from src.application.security import Principal, Scope, require_scope
from src.domain.calculator import Calculation, Calculator, Operation
from src.domain.events import CalculationPerformed


@dataclass(frozen=True, slots=True, kw_only=True)
class CalculateCommand:
    """An operation and its two operands as the client wrote them."""

    operation: Operation
    a: str
    b: str


class Calculate:
    """Performs a calculation for a principal.

    Rules:
        - needs the ``calculator`` scope;
        - operands are parsed exactly and bounded by the calculator's limits;
        - the result is published as an event only the same client's subscribers see.
    """

    def __init__(self, *, calculator: Calculator, events: EventBus, clock: Clock) -> None:
        self._calculator = calculator
        self._events = events
        self._clock = clock

    async def execute(self, principal: Principal, command: CalculateCommand) -> Calculation:
        """Calculate, publish, and return the calculation."""
        require_scope(principal, Scope.CALCULATOR)
        calculation = self._calculator.evaluate(command.operation, command.a, command.b)
        await self._events.publish(
            CalculationPerformed(
                calculation=calculation,
                client_id=principal.client_id,
                occurred_at=self._clock.now(),
            )
        )
        return calculation
