"""``POST /calculator/{add,subtract,multiply,divide}``: operands from the query or a JSON body.

Plain ASGI routes (see :mod:`src.adapters.http.plain`), each authenticating its own caller: the
calculator is the service's hottest route, and router middleware would add a second layer of
exception handling to every call. :func:`path_items` documents them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

import msgspec
from litestar import asgi
from litestar.exceptions import ClientException
from litestar.handlers import ASGIRouteHandler
from litestar.openapi.spec import (
    Example,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    Parameter,
    PathItem,
    Reference,
    RequestBody,
    Responses,
    Schema,
)
from litestar.types import Receive, Scope, Send

from src.adapters.http.openapi import CALCULATOR_SECURITY, written_problem, written_response
from src.adapters.http.plain import read_body, refuse_unless_post
from src.adapters.http.responses import JsonBody
from src.adapters.http.wire import calculation_body, encoder
from src.application.calculate import Calculate, CalculateCommand
from src.application.security import Principal
from src.domain.calculator import Operation as Arithmetic
from src.domain.errors import InvalidOperand

MAX_BODY = 4096
"""The largest JSON body accepted, in bytes: two operands at their bounds fit with room."""
BODY_REFUSED = 'the body must be a JSON object {"a": <number>, "b": <number>}'


class _Operands(msgspec.Struct, forbid_unknown_fields=True):
    a: msgspec.Raw
    b: msgspec.Raw


_operands = msgspec.json.Decoder(_Operands)


def _text(raw: msgspec.Raw) -> str:
    """A JSON operand's text: a number's exact digits, or a string's contents."""
    data = bytes(raw)
    return msgspec.json.decode(data, type=str) if data.startswith(b'"') else data.decode()


def query_operands(query: bytes) -> tuple[str | None, str | None]:
    """``a`` and ``b`` from a query string; of a repeated one, the last (as Litestar reads)."""
    a = b = None
    if query:
        for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if name == "a":
                a = value
            elif name == "b":
                b = value
    return a, b


async def operands(scope: Scope, receive: Receive) -> tuple[str, str]:
    """The operands from the query string, else from a JSON body ``{"a": ..., "b": ...}``."""
    a, b = query_operands(scope["query_string"])
    if a is None and b is None:
        body = await read_body(receive, MAX_BODY)
        if body:
            try:
                parsed = _operands.decode(body)
            except msgspec.DecodeError:
                raise ClientException(BODY_REFUSED) from None
            return _text(parsed.a), _text(parsed.b)
    if a is None or b is None:
        raise InvalidOperand(f"{'a' if a is None else 'b'} is required")
    return a, b


def _route(
    operation: Arithmetic,
    calculate: Callable[[], Calculate],
    principal: Callable[[Scope], Awaitable[Principal]],
) -> ASGIRouteHandler:
    @asgi(f"/calculator/{operation.value}", is_mount=False, copy_scope=False)
    async def calculator(scope: Scope, receive: Receive, send: Send) -> None:
        if not await refuse_unless_post(scope, receive, send):
            return
        caller = await principal(scope)
        first, second = await operands(scope, receive)
        command = CalculateCommand(operation=operation, a=first, b=second)
        calculation = await calculate().execute(caller, command)
        await JsonBody(encoder.encode(calculation_body(calculation)))(scope, receive, send)

    return calculator


def handlers(
    calculate: Callable[[], Calculate], *, principal: Callable[[Scope], Awaitable[Principal]]
) -> list[ASGIRouteHandler]:
    """The four routes: each checks its method, authenticates (``principal``), then runs
    ``calculate`` (from the closure, not resolved per request by Litestar's dependencies)."""
    return [_route(operation, calculate, principal) for operation in Arithmetic]


# --- the OpenAPI operations Litestar does not write for ASGI routes --------------------------

_NUMBER = Schema(
    type=OpenAPIType.NUMBER, description="A JSON number, written from the exact decimal"
)
_DECIMAL = Schema(
    one_of=[Schema(type=OpenAPIType.NUMBER), Schema(type=OpenAPIType.STRING)],
    description="A decimal number: a JSON number (its exact digits) or a decimal string",
)
CALCULATION = "Calculation"
SCHEMAS = {
    CALCULATION: Schema(
        title=CALCULATION,
        type=OpenAPIType.OBJECT,
        properties={
            "operation": Schema(
                type=OpenAPIType.STRING, enum=[operation.value for operation in Arithmetic]
            ),
            "a": _NUMBER,
            "b": _NUMBER,
            "result": _NUMBER,
        },
        required=["a", "b", "operation", "result"],
    )
}
"""The component schemas the calculator's operations refer to."""

_BODY = RequestBody(
    description="The operands, when the query string has neither `a` nor `b`",
    required=False,
    content={
        "application/json": OpenAPIMediaType(
            schema=Schema(
                type=OpenAPIType.OBJECT,
                properties={"a": _DECIMAL, "b": _DECIMAL},
                required=["a", "b"],
                additional_properties=False,
            )
        )
    },
)
_PARAMETERS: list[Parameter | Reference] = [
    Parameter(
        name=name,
        param_in="query",
        required=False,
        description=description,
        schema=Schema(type=OpenAPIType.STRING),
        examples={f"{name}-example-1": Example(value=example)},
    )
    for name, description, example in [
        ("a", "First operand, a decimal number (e.g. `5`, `-1.5`, `6.02e23`).", "5"),
        ("b", "Second operand, a decimal number.", "3"),
    ]
]
_RESPONSES: Responses = {
    "200": written_response("The exact result", CALCULATION),
    "400": written_problem("An operand is invalid or out of range, or division by zero"),
    "401": written_problem("Missing or invalid access token (`WWW-Authenticate: Bearer`)"),
    "403": written_problem("The token lacks the scope this route needs"),
    "413": written_problem(f"The body is larger than {MAX_BODY} bytes"),
}


def path_items() -> dict[str, PathItem]:
    """The four operations, documented as the routes above serve them."""
    return {
        f"/calculator/{name}": PathItem(
            post=Operation(
                tags=["Calculator"],
                summary=f"{name.capitalize()} two numbers",
                description=(
                    f"Exact decimal `{name}` of `a` and `b` (query parameters, or a JSON body "
                    '`{"a": ..., "b": ...}` whose operands are JSON numbers or decimal '
                    "strings). Needs the `calculator` scope."
                ),
                operation_id=name,
                parameters=_PARAMETERS,
                request_body=_BODY,
                responses=_RESPONSES,
                security=CALCULATOR_SECURITY,
            )
        )
        for name in (operation.value for operation in Arithmetic)
    }
