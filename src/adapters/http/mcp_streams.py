"""SSE for MCP's 2025-era transports: one-answer streams, and a session's long-lived GET stream.

Messages sent on a session's streams are kept in the session store under event ids that name
their stream, so a client that loses a stream resumes it with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from litestar.types import Receive, Scope, Send

from src.adapters.http.observe import metrics_of
from src.adapters.http.responses import AsgiReply
from src.adapters.mcp import messages, versions
from src.adapters.mcp.resources import EVENTS_URI
from src.adapters.wire import encoder
from src.application.errors import InsufficientScope, StreamEnded
from src.application.ports import Session, SessionStore
from src.application.security import Principal
from src.application.stream_events import EventStream, StreamEventsCommand

if TYPE_CHECKING:
    from src.adapters.http.mcp import McpServices

SSE_HEADERS = (
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)
UPDATED = encoder.encode(
    {
        "jsonrpc": "2.0",
        "method": "notifications/resources/updated",
        "params": {"uri": EVENTS_URI},
    }
)


def frame(payload: bytes, event_id: str | None = None, event: str = "message") -> bytes:
    """One SSE event (JSON payloads are one line, so one ``data:`` field)."""
    head = b"id: %s\n" % event_id.encode() if event_id else b""
    return head + b"event: %s\ndata: %s\n\n" % (event.encode(), payload)


class SseBody(AsgiReply):
    """A finite SSE response: its frames, then the end."""

    __slots__ = ("frames", "headers")

    def __init__(self, frames: Sequence[bytes], headers: Sequence[tuple[bytes, bytes]] = ()):
        self.frames = frames
        self.headers = headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the stream."""
        start: Any = {"type": "http.response.start", "status": 200}
        start["headers"] = [*SSE_HEADERS, *self.headers]
        await send(start)
        body = b"".join(self.frames)
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def sse_answer(
    body: bytes,
    *,
    sessions: SessionStore | None = None,
    session: Session | None = None,
    retry_ms: int = 3000,
    headers: Sequence[tuple[bytes, bytes]] = (),
) -> SseBody:
    """A POST answered as SSE: a priming event (2025-11-25 on), then the response."""
    if sessions is None or session is None:
        return SseBody([frame(body)], headers)
    stream_id = secrets.token_urlsafe(8)
    frames = []
    if versions.priming_supported(session.protocol_version):
        prime = await sessions.append(session.session_id, stream_id, b"")
        frames.append(b"id: %s\nretry: %d\ndata: \n\n" % (prime.encode(), retry_ms))
    event_id = await sessions.append(session.session_id, stream_id, body)
    frames.append(frame(body, event_id))
    return SseBody(frames, headers)


class SessionStream:
    """A session's GET stream: replay after ``Last-Event-ID``, then change notifications."""

    def __init__(self, services: McpServices, session: Session, principal: Principal) -> None:
        self._services = services
        self._session = session
        self._principal = principal

    async def open(self, last_event_id: str | None) -> AsgiReply:
        """The stream (or a 405 when the caller may not follow events)."""
        from src.adapters.http.mcp_common import jsonrpc_reply  # noqa: PLC0415 - avoid a cycle

        try:
            events = await self._services.stream_events().execute(
                self._principal, StreamEventsCommand()
            )
        except InsufficientScope:
            failure = messages.McpError(
                messages.INVALID_REQUEST, "Method Not Allowed: no server stream without 'sse'"
            )
            return jsonrpc_reply(failure, 405, ((b"allow", b"POST"),))
        sessions = self._services.sessions()
        stream_id, replay = "get-" + secrets.token_urlsafe(8), []
        if last_event_id:
            stream_id, found = await sessions.replay(self._session.session_id, last_event_id)
            replay = [frame(m.payload, m.event_id) for m in found if m.payload]
        return _SessionPump(self, events, stream_id, replay)

    async def notify(self, stream_id: str) -> bytes | None:
        """The notification for new events, if the session subscribed to them."""
        sessions = self._services.sessions()
        session = await sessions.get(self._session.session_id)
        if session is None:
            raise StreamEnded("closed", "the session ended", retry=False)
        if EVENTS_URI not in session.subscriptions:
            return None
        event_id = await sessions.append(session.session_id, stream_id, UPDATED)
        return frame(UPDATED, event_id)


class _SessionPump(AsgiReply):
    __slots__ = ("_events", "_owner", "_replay", "_stream_id")

    def __init__(
        self, owner: SessionStream, events: EventStream, stream_id: str, replay: list[bytes]
    ) -> None:
        self._owner = owner
        self._events = events
        self._stream_id = stream_id
        self._replay = replay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services = self._owner._services
        metrics = metrics_of(scope)
        metrics.stream_opened("mcp")
        try:
            await self._pump(services, receive, send)
        finally:
            metrics.stream_closed("mcp")

    async def _pump(self, services: McpServices, receive: Receive, send: Send) -> None:
        start: Any = {"type": "http.response.start", "status": 200, "headers": list(SSE_HEADERS)}
        await send(start)
        watcher = asyncio.ensure_future(_close_on_disconnect(receive, self._events))
        try:
            await _chunk(send, b"retry: %d\n\n" % services.retry_ms + b"".join(self._replay))
            while True:
                try:
                    batch = await self._events.next_batch(services.ping_interval)
                    body = await self._owner.notify(self._stream_id) if batch else b": ping\n\n"
                except StreamEnded:
                    break
                if body:
                    await _chunk(send, body)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass
        finally:
            self._events.close()
            watcher.cancel()


async def _chunk(send: Send, body: bytes) -> None:
    await send({"type": "http.response.body", "body": body, "more_body": True})


async def _close_on_disconnect(receive: Receive, events: EventStream) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    events.close()
