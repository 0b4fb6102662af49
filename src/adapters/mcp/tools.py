"""The calculator as MCP tools: definitions, argument parsing, and calls onto the use cases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from src.adapters.mcp.messages import INVALID_PARAMS, McpError
from src.adapters.wire import encoder
from src.application.broadcast import Broadcast, BroadcastCommand
from src.application.calculate import Calculate, CalculateCommand
from src.application.security import Principal, Scope
from src.domain.calculator import Operation
from src.domain.errors import DomainError
from src.domain.events import MAX_MESSAGE_LENGTH

OPERAND = {
    "type": ["number", "string"],
    "description": 'A decimal number: a JSON number, or a string such as "0.1" or "6.02e23".',
}
NUMBER = {"type": "number", "description": "Written from the exact decimal result."}
DESCRIPTIONS = {
    Operation.ADD: "Add two numbers exactly (decimal arithmetic: 0.1 + 0.2 is 0.3).",
    Operation.SUBTRACT: "Subtract b from a exactly (decimal arithmetic).",
    Operation.MULTIPLY: "Multiply two numbers exactly (decimal arithmetic).",
    Operation.DIVIDE: "Divide a by b, rounded half-even to 34 significant digits.",
}


class ToolCall(msgspec.Struct):
    """``tools/call`` params."""

    name: str
    arguments: dict[str, msgspec.Raw] | None = None


@dataclass(frozen=True, slots=True)
class Tool:
    """One tool: what ``tools/list`` shows and the scope it needs."""

    name: str
    scope: Scope
    definition: dict[str, Any]


def _calculator_tool(operation: Operation) -> Tool:
    return Tool(
        name=operation.value,
        scope=Scope.CALCULATOR,
        definition={
            "name": operation.value,
            "title": operation.value.capitalize(),
            "description": DESCRIPTIONS[operation],
            "inputSchema": {
                "type": "object",
                "properties": {"a": OPERAND, "b": OPERAND},
                "required": ["a", "b"],
                "additionalProperties": False,
            },
            "outputSchema": {
                "type": "object",
                "properties": {
                    "operation": {"type": "string", "const": operation.value},
                    "a": NUMBER,
                    "b": NUMBER,
                    "result": NUMBER,
                },
                "required": ["operation", "a", "b", "result"],
            },
            "annotations": {"readOnlyHint": False, "idempotentHint": True, "openWorldHint": False},
        },
    )


BROADCAST = Tool(
    name="broadcast",
    scope=Scope.SSE,
    definition={
        "name": "broadcast",
        "title": "Broadcast",
        "description": "Send a message to every subscriber of the event stream.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "message": {"type": "string", "minLength": 1, "maxLength": MAX_MESSAGE_LENGTH}
            },
            "required": ["message"],
            "additionalProperties": False,
        },
        "outputSchema": {
            "type": "object",
            "properties": {"event_id": {"type": "string", "description": "The event's id."}},
            "required": ["event_id"],
        },
        "annotations": {"readOnlyHint": False, "idempotentHint": False, "openWorldHint": False},
    },
)
TOOLS = (*(_calculator_tool(operation) for operation in Operation), BROADCAST)
BY_NAME = {tool.name: tool for tool in TOOLS}


def visible(principal: Principal) -> list[dict[str, Any]]:
    """The tools ``principal``'s scopes allow, in a stable order."""
    return [tool.definition for tool in TOOLS if tool.scope in principal.scopes]


class Tools:
    """Runs tool calls through the use cases; refusals become ``isError`` results."""

    def __init__(
        self, *, calculate: Callable[[], Calculate], broadcast: Callable[[], Broadcast]
    ) -> None:
        self._calculate = calculate
        self._broadcast = broadcast

    async def call(self, principal: Principal, call: ToolCall) -> dict[str, Any]:
        """The ``tools/call`` result.

        Raises:
            McpError: ``INVALID_PARAMS`` for a tool that does not exist.
            InsufficientScope: the caller may not use this tool.
        """
        tool = BY_NAME.get(call.name)
        if tool is None:
            raise McpError(INVALID_PARAMS, f"Unknown tool: {call.name}")
        arguments = call.arguments or {}
        try:
            if tool is BROADCAST:
                structured = await self._run_broadcast(principal, arguments)
            else:
                structured = await self._run_calculation(principal, tool.name, arguments)
        except (DomainError, _ArgumentError) as refusal:
            return {"content": [{"type": "text", "text": str(refusal)}], "isError": True}
        encoded = encoder.encode(structured)  # once: the text is the structured content's JSON
        return {
            "content": [{"type": "text", "text": encoded.decode()}],
            "structuredContent": msgspec.Raw(encoded),
        }

    async def _run_calculation(
        self, principal: Principal, name: str, arguments: dict[str, msgspec.Raw]
    ) -> dict[str, Any]:
        _only(arguments, ("a", "b"))
        command = CalculateCommand(
            operation=Operation(name), a=_operand(arguments, "a"), b=_operand(arguments, "b")
        )
        calculation = await self._calculate().execute(principal, command)
        return {
            "operation": name,
            "a": calculation.a,
            "b": calculation.b,
            "result": calculation.result,
        }

    async def _run_broadcast(
        self, principal: Principal, arguments: dict[str, msgspec.Raw]
    ) -> dict[str, Any]:
        _only(arguments, ("message",))
        raw = arguments.get("message")
        if raw is None:
            raise _ArgumentError("message is required")
        try:
            message = msgspec.json.decode(raw, type=str)
        except msgspec.ValidationError:
            raise _ArgumentError("message must be a string") from None
        receipt = await self._broadcast().execute(principal, BroadcastCommand(message=message))
        return {"event_id": receipt.event_id}


class _ArgumentError(Exception):
    """Arguments that do not fit the tool's input schema (a tool execution error)."""


def _only(arguments: dict[str, msgspec.Raw], allowed: tuple[str, ...]) -> None:
    extra = sorted(set(arguments) - set(allowed))
    if extra:
        raise _ArgumentError(f"unexpected argument(s): {', '.join(extra)}")


def _operand(arguments: dict[str, msgspec.Raw], name: str) -> str:
    """An operand's exact text: a JSON number's digits as written, or a string's contents."""
    raw = arguments.get(name)
    if raw is None:
        raise _ArgumentError(f"{name} is required")
    text = bytes(raw)
    if text.startswith(b'"'):
        return msgspec.json.decode(text, type=str)
    if not text[:1].isdigit() and text[:1] != b"-":
        raise _ArgumentError(f"{name} must be a number or a decimal string")
    return text.decode()
