"""MCP's deprecated HTTP+SSE transport (2024-11-05): ``GET /sse`` and ``POST /messages``.

Still served because older clients speak nothing else. The client opens the event stream, is
told where to POST (the ``endpoint`` event, relative to the server's root path so it is right
behind a path prefix), and gets every answer on the stream; each POST is answered 202.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import QueryParameter
from litestar.types import Receive, Scope, Send

from src.adapters.http.mcp import McpServices
from src.adapters.http.mcp_common import MAX_BODY, jsonrpc_reply
from src.adapters.http.mcp_streams import SSE_HEADERS, frame
from src.adapters.http.responses import AsgiReply, JsonBody
from src.adapters.mcp import messages, versions
from src.adapters.mcp.messages import INVALID_REQUEST, McpError
from src.adapters.mcp.server import Exchange
from src.application.security import Principal

MAX_QUEUED = 256


class Outbox:
    """Messages waiting to go down one session's stream (bounded: a stalled stream is cut)."""

    __slots__ = ("closed", "messages", "waiter")

    def __init__(self) -> None:
        self.messages: deque[bytes] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False

    def put(self, payload: bytes) -> bool:
        """Queue a message; ``False`` when the stream is gone or too far behind."""
        if self.closed or len(self.messages) >= MAX_QUEUED:
            self.close()
            return False
        self.messages.append(payload)
        self._wake()
        return True

    def close(self) -> None:
        """End the stream."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait(self, timeout: float) -> None:
        """Until a message arrives, the stream closes, or ``timeout`` passes."""
        if self.messages or self.closed:
            return
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(asyncio.shield(self.waiter), timeout)
        except TimeoutError:
            pass
        finally:
            self.waiter = None


class LegacySse:
    """The open HTTP+SSE streams of this process, by session id."""

    def __init__(self, services: McpServices) -> None:
        self._services = services
        self.outboxes: dict[str, Outbox] = {}

    def stop(self) -> None:
        """End every stream (server shutdown)."""
        for outbox in self.outboxes.values():
            outbox.close()

    async def open(self, request: Request[Principal, Any, Any]) -> AsgiReply:
        """A new session and its stream."""
        server = self._services.server()
        session = await server.open_session(request.user, versions.HTTP_SSE)
        outbox = self.outboxes[session.session_id] = Outbox()
        endpoint = f"{request.scope.get('root_path', '')}/messages?session_id={session.session_id}"
        return _Stream(self, session.session_id, outbox, endpoint, request.user.expires_at)

    async def message(self, request: Request[Principal, Any, Any], session_id: str) -> AsgiReply:
        """A message for a session's stream."""
        sessions = self._services.sessions()
        session = await sessions.get(session_id)
        outbox = self.outboxes.get(session_id)
        if session is None or outbox is None or session.client_id != request.user.client_id:
            return jsonrpc_reply(McpError(INVALID_REQUEST, "Not Found: unknown session"), 404)
        try:
            parsed = messages.parse(await request.body())
        except McpError as failure:
            return jsonrpc_reply(failure, 400)
        if isinstance(parsed, list):
            batch = McpError(INVALID_REQUEST, "Invalid Request: batches are not supported")
            return jsonrpc_reply(batch, 400)
        server = self._services.server()
        if parsed.method == "initialize":
            try:
                body, _ = await server.initialize(parsed, request.user, session)
            except McpError as failure:
                body = messages.error(
                    parsed.id if isinstance(parsed.id, int | str) else None, failure
                )
            outbox.put(body)
        elif parsed.is_request:
            exchange = Exchange(
                principal=request.user, version=session.protocol_version, session=session
            )
            outbox.put((await server.answer(parsed, exchange)).body)
        return JsonBody(b"", status=202)

    async def forget(self, session_id: str) -> None:
        """The stream ended: its session goes too."""
        self.outboxes.pop(session_id, None)
        await self._services.sessions().delete(session_id)


class _Stream(AsgiReply):
    __slots__ = ("_endpoint", "_expires_at", "_outbox", "_owner", "_session_id")

    def __init__(
        self, owner: LegacySse, session_id: str, outbox: Outbox, endpoint: str, expires_at: float
    ) -> None:
        self._owner = owner
        self._session_id = session_id
        self._outbox = outbox
        self._endpoint = endpoint
        self._expires_at = expires_at

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outbox, ping = self._outbox, self._owner._services.ping_interval
        start: Any = {"type": "http.response.start", "status": 200, "headers": list(SSE_HEADERS)}
        await send(start)
        watcher = asyncio.ensure_future(_close_on_disconnect(receive, outbox))
        try:
            await _chunk(send, frame(self._endpoint.encode(), event="endpoint"))
            while not outbox.closed and time.time() < self._expires_at:
                await outbox.wait(min(ping, max(0.0, self._expires_at - time.time())))
                batch = [frame(outbox.messages.popleft()) for _ in range(len(outbox.messages))]
                await _chunk(send, b"".join(batch) if batch else b": ping\n\n")
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass
        finally:
            watcher.cancel()
            outbox.close()
            await asyncio.shield(self._owner.forget(self._session_id))


async def _chunk(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _close_on_disconnect(receive: Receive, outbox: Outbox) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    outbox.close()


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
