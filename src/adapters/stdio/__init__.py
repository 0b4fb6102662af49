"""MCP over stdio: newline-delimited JSON-RPC on stdin and stdout, logs on stderr only.

The principal comes from configuration (MCP's stdio transport takes credentials from the
environment). Imports nothing of the HTTP stack, so a desktop client's launch is quick.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import BinaryIO

import msgspec

from src.adapters.mcp import messages, versions
from src.adapters.mcp.messages import (
    INSUFFICIENT_SCOPE,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    Incoming,
    McpError,
)
from src.adapters.mcp.server import Exchange, McpServer, modern_version
from src.application.errors import InsufficientScope, ServiceUnavailable
from src.application.security import Principal

log = logging.getLogger("calcmcp.stdio")
STDIO = "stdio"


class StdioSession:
    """One client on the other end of stdin and stdout."""

    def __init__(self, server: McpServer, principal: Principal) -> None:
        self._server = server
        self._principal = principal
        self._version: str | None = None  # negotiated by initialize (2025 era)

    async def handle(self, line: bytes) -> bytes | None:
        """The answer to one line (``None`` for notifications and blank lines)."""
        if not line.strip():
            return None
        try:
            parsed = messages.parse(line)
        except McpError as failure:
            return messages.error(None, failure)
        if isinstance(parsed, list):
            answers = [
                messages.error(None, member)
                if isinstance(member, McpError)
                else await self._one(member)
                for member in parsed
            ]
            present = [answer for answer in answers if answer is not None]
            return b"[" + b",".join(present) + b"]" if present else None
        return await self._one(parsed)

    async def _one(self, message: Incoming) -> bytes | None:
        request_id = message.id if isinstance(message.id, int | str) else None
        if not message.is_request:
            return None
        try:
            return await self._answer(message)
        except Exception:  # the outermost edge: a failure answers this request, never the process
            log.exception("stdio request failed")
            return messages.error(request_id, McpError(INTERNAL_ERROR, "Internal error"))

    async def _answer(self, message: Incoming) -> bytes | None:
        request_id = message.id if isinstance(message.id, int | str) else None
        try:
            exchange = await self._exchange(message)
            if exchange is None:  # initialize
                body, session = await self._server.initialize(message, self._principal, era="stdio")
                self._version = session.protocol_version
                return body
            return (await self._server.answer(message, exchange)).body
        except McpError as failure:
            return messages.error(request_id, failure)
        except ServiceUnavailable as refusal:
            busy = McpError(INTERNAL_ERROR, f"temporarily unavailable: {refusal}")
            return messages.error(request_id, busy)
        except InsufficientScope as refusal:
            forbidden = McpError(INSUFFICIENT_SCOPE, str(refusal), {"scope": refusal.scope})
            return messages.error(request_id, forbidden)

    async def _exchange(self, message: Incoming) -> Exchange | None:
        if message.method == "initialize":
            return None
        if message.params is not msgspec.UNSET and b'"_meta"' in bytes(message.params):
            try:
                version = modern_version(message)
            except McpError:
                if self._version is None:
                    raise
            else:
                return Exchange(principal=self._principal, version=version, transport=STDIO)
        if self._version is not None:
            return Exchange(principal=self._principal, version=self._version, transport=STDIO)
        if message.method == "ping":
            return Exchange(
                principal=self._principal, version=versions.HANDSHAKE[0], transport=STDIO
            )
        raise McpError(
            INVALID_REQUEST,
            "Invalid Request: send initialize first, or 2026-07-28 requests with _meta",
        )


def serve(server: McpServer, principal: Principal, stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Answer lines from ``stdin`` until it closes."""
    session = StdioSession(server, principal)
    loop = asyncio.new_event_loop()
    try:
        for line in stdin:
            answer = loop.run_until_complete(session.handle(line))
            if answer is not None:
                stdout.write(answer + b"\n")
                stdout.flush()
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        loop.close()


def serve_process(server: McpServer, principal: Principal) -> None:
    """Serve this process's stdin and stdout."""
    log.info("MCP over stdio, acting for client %s", principal.client_id)
    serve(server, principal, sys.stdin.buffer, sys.stdout.buffer)
