"""MCP's deprecated HTTP+SSE transport (2024-11-05): ``GET /sse`` and ``POST /messages``.

Still served because older clients speak nothing else. The client opens the event stream, is
told where to POST (the ``endpoint`` event, relative to the server's root path so it is right
behind a path prefix), and gets every answer on the stream; each POST is answered 202.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import QueryParameter
from litestar.types import Receive, Scope, Send

from src.adapters.http.mcp import McpServices
from src.adapters.http.mcp_common import MAX_BODY, jsonrpc_reply
from src.adapters.http.mcp_streams import SSE_HEADERS, frame
from src.adapters.http.observe import metrics_of
from src.adapters.http.plain import read_body
from src.adapters.http.responses import AsgiReply, JsonBody
from src.adapters.mcp import messages, versions
from src.adapters.mcp.messages import INVALID_REQUEST, McpError
from src.adapters.mcp.server import Exchange
from src.application.ports import Mailbox, SubscriptionClosed
from src.application.security import Principal


class LegacySse:
    """Opens HTTP+SSE sessions and delivers their answers through the session mailboxes."""

    def __init__(self, services: McpServices) -> None:
        self._services = services

    async def open(self, request: Request[Principal, Any, Any]) -> AsgiReply:
        """A new session and its stream."""
        server = self._services.server()
        session = await server.open_session(request.user, versions.HTTP_SSE)
        mailbox = await self._services.mailboxes().open(session.session_id)
        endpoint = f"{request.scope.get('root_path', '')}/messages?session_id={session.session_id}"
        return _Stream(self, session.session_id, mailbox, endpoint, request.user.expires_at)

    async def message(self, request: Request[Principal, Any, Any], session_id: str) -> AsgiReply:
        """A message for a session's stream."""
        sessions = self._services.sessions()
        session = await sessions.get(session_id)
        if session is None or session.client_id != request.user.client_id:
            return jsonrpc_reply(McpError(INVALID_REQUEST, "Not Found: unknown session"), 404)
        try:
            parsed = messages.parse(await read_body(request.receive, MAX_BODY))
        except McpError as failure:
            return jsonrpc_reply(failure, 400)
        if isinstance(parsed, list):
            batch = McpError(INVALID_REQUEST, "Invalid Request: batches are not supported")
            return jsonrpc_reply(batch, 400)
        server = self._services.server()
        if parsed.method == "initialize":
            try:
                body, _ = await server.initialize(parsed, request.user, session, era="http+sse")
            except McpError as failure:
                body = messages.error(
                    parsed.id if isinstance(parsed.id, int | str) else None, failure
                )
        elif parsed.is_request:
            exchange = Exchange(
                principal=request.user,
                version=session.protocol_version,
                session=session,
                transport="http+sse",
            )
            body = (await server.answer(parsed, exchange)).body
        else:
            return JsonBody(b"", status=202)
        if not await self._services.mailboxes().send(session_id, body):
            gone = McpError(INVALID_REQUEST, "Not Found: the session's stream has ended")
            return jsonrpc_reply(gone, 404)
        return JsonBody(b"", status=202)

    async def forget(self, session_id: str) -> None:
        """The stream ended: its session goes too."""
        await self._services.sessions().delete(session_id)


class _Stream(AsgiReply):
    __slots__ = ("_endpoint", "_expires_at", "_mailbox", "_owner", "_session_id")

    def __init__(
        self, owner: LegacySse, session_id: str, mailbox: Mailbox, endpoint: str, expires_at: float
    ) -> None:
        self._owner = owner
        self._session_id = session_id
        self._mailbox = mailbox
        self._endpoint = endpoint
        self._expires_at = expires_at

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        metrics = metrics_of(scope)
        metrics.stream_opened("mcp_sse")
        try:
            await self._pump(receive, send)
        finally:
            metrics.stream_closed("mcp_sse")

    async def _pump(self, receive: Receive, send: Send) -> None:
        mailbox, ping = self._mailbox, self._owner._services.ping_interval
        start: Any = {"type": "http.response.start", "status": 200, "headers": list(SSE_HEADERS)}
        await send(start)
        watcher = asyncio.ensure_future(_close_on_disconnect(receive, mailbox))
        try:
            await _chunk(send, frame(self._endpoint.encode(), event="endpoint"))
            while (left := self._expires_at - time.time()) > 0:
                try:
                    batch = await mailbox.receive(min(ping, left))
                except SubscriptionClosed:
                    break
                await _chunk(send, b"".join(map(frame, batch)) if batch else b": ping\n\n")
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass
        finally:
            watcher.cancel()
            mailbox.close()
            await asyncio.shield(self._owner.forget(self._session_id))


async def _chunk(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _close_on_disconnect(receive: Receive, mailbox: Mailbox) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    mailbox.close()


def handlers(legacy: LegacySse) -> list[HTTPRouteHandler]:
    """``GET /sse`` and ``POST /messages`` (the MCP router adds security and authentication)."""

    @get("/sse", include_in_schema=False)
    async def sse(request: Request[Principal, Any, Any]) -> AsgiReply:
        return await legacy.open(request)

    @post("/messages", include_in_schema=False, request_max_body_size=MAX_BODY)
    async def messages_(
        request: Request[Principal, Any, Any],
        session_id: Annotated[str, QueryParameter(description="The session the stream named")],
    ) -> AsgiReply:
        return await legacy.message(request, session_id)

    return [sse, messages_]
