"""JSON-RPC 2.0 messages as MCP uses them, and the error codes it defines."""

from __future__ import annotations

from typing import Any

import msgspec

from src.adapters.wire import encoder

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
INSUFFICIENT_SCOPE = -32001  # implementation-defined (the -32000..-32099 server range)
RESOURCE_NOT_FOUND = -32002  # 2025-era; 2026-07-28 uses INVALID_PARAMS
HEADER_MISMATCH = -32020
MISSING_CAPABILITY = -32021
UNSUPPORTED_VERSION = -32022

RequestId = int | str


class Incoming(msgspec.Struct, forbid_unknown_fields=False):
    """Any message a client sends: a request (with ``id``), a notification, or a response."""

    jsonrpc: str | msgspec.UnsetType = msgspec.UNSET
    method: str | msgspec.UnsetType = msgspec.UNSET
    id: RequestId | msgspec.UnsetType | None = msgspec.UNSET
    params: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    result: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    error: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET

    @property
    def is_request(self) -> bool:
        """A request expects a response."""
        return self.method is not msgspec.UNSET and self.id is not msgspec.UNSET

    @property
    def is_notification(self) -> bool:
        """A notification expects none."""
        return self.method is not msgspec.UNSET and self.id is msgspec.UNSET


class McpError(Exception):
    """A JSON-RPC error to answer with."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


_incoming = msgspec.json.Decoder(Incoming)
_batch = msgspec.json.Decoder(list[msgspec.Raw])


def parse(body: bytes) -> Incoming | list[Incoming | McpError]:
    """Decode one message, or a batch (2025-03-26) whose bad members are errors of their own.

    Numbers are not parsed here (params stay raw until a method reads them), so an operand such
    as ``1e999999`` reaches the calculator, which refuses it properly.

    Raises:
        McpError: ``PARSE_ERROR`` for malformed JSON (or text that is not UTF-8),
            ``INVALID_REQUEST`` for JSON that is not a JSON-RPC message.
    """
    try:  # JSON text is UTF-8 (RFC 8259 §8.1); checked once here, for every part read later
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise McpError(PARSE_ERROR, "Parse error: the body is not UTF-8") from None
    if body.lstrip()[:1] != b"[":
        return _message(body)
    try:
        members = _batch.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise McpError(PARSE_ERROR, "Parse error: the body is not valid JSON") from None
    if not members:
        raise McpError(INVALID_REQUEST, "Invalid Request: an empty batch")
    return [_member(bytes(member)) for member in members]


def _member(raw: bytes) -> Incoming | McpError:
    try:
        return _message(raw)
    except McpError as failure:
        return failure


def _message(body: bytes) -> Incoming:
    try:
        message = _incoming.decode(body)
    except msgspec.ValidationError:
        raise McpError(INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message") from None
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise McpError(PARSE_ERROR, "Parse error: the body is not valid JSON") from None
    addressed = message.method is not msgspec.UNSET or message.id is not msgspec.UNSET
    if message.jsonrpc != "2.0" or not addressed:
        raise McpError(INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message")
    return message


def params(message: Incoming, kind: type[Any]) -> Any:
    """The request's params decoded as ``kind``.

    Raises:
        McpError: ``INVALID_PARAMS`` when they do not fit.
    """
    raw = message.params if message.params is not msgspec.UNSET else b"{}"
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as error:
        raise McpError(INVALID_PARAMS, f"Invalid params: {error}") from None
    except msgspec.DecodeError:
        raise McpError(INVALID_PARAMS, "Invalid params") from None


def result(request_id: RequestId | None, value: Any) -> bytes:
    """A JSON-RPC response."""
    return encoder.encode({"jsonrpc": "2.0", "id": request_id, "result": value})


def error(request_id: RequestId | None, failure: McpError) -> bytes:
    """A JSON-RPC error response (always with an ``id``, ``null`` when unknown)."""
    body: dict[str, Any] = {"code": failure.code, "message": failure.message}
    if failure.data is not None:
        body["data"] = failure.data
    return encoder.encode({"jsonrpc": "2.0", "id": request_id, "error": body})
