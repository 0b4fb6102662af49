"""``POST /calculator/{add,subtract,multiply,divide}``: operands from the query or a JSON body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import msgspec
from litestar import Request, post
from litestar.exceptions import ClientException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import Example
from litestar.params import QueryParameter

from src.adapters.http.openapi import CALCULATOR_SECURITY, calculator_responses
from src.adapters.http.responses import JsonBody
from src.adapters.http.wire import calculation_body, encoder
from src.application.calculate import Calculate, CalculateCommand
from src.application.security import Principal
from src.domain.calculator import Operation
from src.domain.errors import InvalidOperand

OperandA = Annotated[
    str | None,
    QueryParameter(
        description="First operand, a decimal number (e.g. `5`, `-1.5`, `6.02e23`).",
        examples=[Example(value="5")],
    ),
]
OperandB = Annotated[
    str | None,
    QueryParameter(description="Second operand, a decimal number.", examples=[Example(value="3")]),
]


class _Operands(msgspec.Struct, forbid_unknown_fields=True):
    a: msgspec.Raw
    b: msgspec.Raw


_operands = msgspec.json.Decoder(_Operands)


def _text(raw: msgspec.Raw) -> str:
    """A JSON operand's text: a number's exact digits, or a string's contents."""
    data = bytes(raw)
    return msgspec.json.decode(data, type=str) if data.startswith(b'"') else data.decode()


async def operands(
    request: Request[Any, Any, Any], a: str | None, b: str | None
) -> tuple[str, str]:
    """The operands from the query string, else from a JSON body ``{"a": ..., "b": ...}``."""
    if a is None and b is None:
        body = await request.body()
        if body:
            try:
                parsed = _operands.decode(body)
            except msgspec.DecodeError:
                raise ClientException(
                    'the body must be a JSON object {"a": <number>, "b": <number>}'
                ) from None
            return _text(parsed.a), _text(parsed.b)
    if a is None or b is None:
        raise InvalidOperand(f"{'a' if a is None else 'b'} is required")
    return a, b


def _handler(operation: Operation, use_case: Callable[[], Calculate]) -> HTTPRouteHandler:
    @post(
        f"/calculator/{operation.value}",
        operation_id=operation.value,
        status_code=200,
        tags=["Calculator"],
        summary=f"{operation.value.capitalize()} two numbers",
        description=(
            f"Exact decimal `{operation.value}` of `a` and `b` (query parameters, or a JSON body "
            '`{"a": ..., "b": ...}` whose operands are JSON numbers or decimal strings). '
            "Needs the `calculator` scope."
        ),
        security=CALCULATOR_SECURITY,
        responses=calculator_responses(),
        request_max_body_size=4096,
    )
    async def handler(
        request: Request[Principal, Any, Any],
        a: OperandA = None,
        b: OperandB = None,
    ) -> JsonBody:
        first, second = await operands(request, a, b)
        command = CalculateCommand(operation=operation, a=first, b=second)
        calculation = await use_case().execute(request.user, command)
        body = encoder.encode(calculation_body(calculation))
        return JsonBody(body)

    return handler


def handlers(calculate: Callable[[], Calculate]) -> list[HTTPRouteHandler]:
    """The four routes, running ``calculate`` (taken from the closure, not resolved per request
    by Litestar's dependency machinery: the hottest route pays a tenth of its time for that)."""
    return [_handler(operation, calculate) for operation in Operation]
