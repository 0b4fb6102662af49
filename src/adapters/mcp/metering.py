"""The labels an MCP request is counted under, bounded whatever the client sends.

A method or tool name the server does not know is counted as ``<unknown>``: a client inventing
names must not invent metric series.
"""

from __future__ import annotations

import msgspec

from src.adapters.mcp.messages import Incoming
from src.adapters.mcp.tools import BY_NAME

UNKNOWN = "<unknown>"
ERAS = ("modern", "handshake", "http+sse", "stdio")
"""The protocol eras: 2026-07-28 (stateless), the 2025 handshake revisions over Streamable
HTTP, the 2024-11-05 HTTP+SSE transport, and any revision over stdio."""


class _Named(msgspec.Struct):
    name: object = None


_named = msgspec.json.Decoder(_Named)


def tool_label(message: Incoming) -> str:
    """The tool a ``tools/call`` names, if it is one of ours."""
    if message.params is msgspec.UNSET:
        return UNKNOWN
    try:
        name = _named.decode(message.params).name
    except msgspec.DecodeError:
        return UNKNOWN
    return name if isinstance(name, str) and name in BY_NAME else UNKNOWN


def labels(message: Incoming, *, known: bool) -> tuple[str, str]:
    """The method and tool labels of ``message`` (``known``: the method exists in its era)."""
    if not known:
        return UNKNOWN, ""
    method = str(message.method)
    return method, tool_label(message) if method == "tools/call" else ""
