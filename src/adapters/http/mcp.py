"""MCP over Streamable HTTP at ``/mcp``: the stateless 2026-07-28 era and the 2025 session eras.

Each POST is routed to its era: ``initialize``, an ``Mcp-Session-Id`` or a 2025 version header
mean the handshake era (sessions, JSON or SSE answers, a GET stream, DELETE); anything else is a
2026-07-28 request, whose headers must agree with its body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import asgi
from litestar.handlers import ASGIRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from src.adapters.http.mcp_common import (
    MAX_BODY,
    McpHttpSettings,
    accepts,
    jsonrpc_reply,
)
from src.adapters.http.mcp_streams import SessionStream, sse_answer
from src.adapters.http.plain import read_body
from src.adapters.http.responses import AsgiReply, JsonBody
from src.adapters.mcp import messages, versions
from src.adapters.mcp.messages import (
    HEADER_MISMATCH,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    UNSUPPORTED_VERSION,
    Incoming,
    McpError,
)
from src.adapters.mcp.server import Exchange, McpServer
from src.application.ports import Session, SessionMailboxes, SessionStore
from src.application.security import Principal
from src.application.stream_events import StreamEvents

SESSION_HEADER = b"mcp-session-id"
ALLOW_POST = ((b"allow", b"POST"),)
ALLOW_ANY = ((b"allow", b"POST, GET, DELETE"),)
# HTTP status of a 2026-07-28 JSON-RPC error, by code (others are 200)
MODERN_STATUS = {-32700: 400, -32600: 400, -32602: 400, -32020: 400, -32021: 400, -32022: 400}
MODERN_STATUS[METHOD_NOT_FOUND] = 404
ASGIReply = Callable[..., Awaitable[None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class McpServices:
    """What the MCP routes run: the engine, the session store, the event stream use case."""

    server: Callable[[], McpServer]
    sessions: Callable[[], SessionStore]
    stream_events: Callable[[], StreamEvents]
    mailboxes: Callable[[], SessionMailboxes]
    ping_interval: float = 15.0
    retry_ms: int = 3000


_READ = frozenset(
    {b"accept", b"mcp-session-id", b"mcp-protocol-version", b"mcp-method", b"mcp-name"}
    | {b"last-event-id"}
)


class McpRequest:
    """What the ``/mcp`` handlers read of a request: its caller, its body, and the headers MCP
    defines, read in one pass (no Litestar ``Request`` and its header containers per call).

    Attributes:
        user: the authenticated caller (set on the scope by the bearer check).
        receive: the ASGI channel the body arrives on.
        headers: the headers this endpoint reads, by lower-case name.
    """

    __slots__ = ("headers", "receive", "user")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.user: Principal = scope["user"]
        self.receive = receive
        self.headers = {k.decode(): v.decode("latin-1") for k, v in scope["headers"] if k in _READ}

    def header(self, name: str) -> str | None:
        """The header called ``name`` (lower case), if it was sent."""
        return self.headers.get(name)


async def _reply(
    body: bytes,
    request: McpRequest,
    status: int = 200,
    headers: tuple[tuple[bytes, bytes], ...] = (),
    *,
    services: McpServices | None = None,
    session: Session | None = None,
) -> AsgiReply:
    """A response as JSON, or as SSE when the client accepts only that (kept for resumption)."""
    if accepts(request.header("accept") or "", "application/json") or status != 200:
        return JsonBody(body, status=status, headers=headers)
    if services is None:
        return await sse_answer(body, headers=headers)
    return await sse_answer(
        body,
        sessions=services.sessions(),
        session=session,
        retry_ms=services.retry_ms,
        headers=headers,
    )


def _has_meta(message: Incoming) -> bool:
    return message.params is not msgspec.UNSET and b'"_meta"' in bytes(message.params)


class _Routing(msgspec.Struct):
    """What the 2026-07-28 checks read from params, decoded once."""

    name: str | None = None
    uri: str | None = None
    meta: dict[str, Any] | None = msgspec.field(default=None, name="_meta")


def _check_modern(request: McpRequest, message: Incoming) -> None:
    """2026-07-28: ``_meta`` complete (-32602), headers agreeing with the body (-32020), and a
    version this server speaks (-32022), in that order: a client that disagrees with itself is
    told so before it is told about versions."""
    routing: _Routing = messages.params(message, _Routing)
    meta = routing.meta or {}
    version = meta.get(versions.META_VERSION)
    if not isinstance(version, str) or not isinstance(meta.get(versions.META_CAPABILITIES), dict):
        raise McpError(
            INVALID_PARAMS,
            "Invalid params: _meta needs the protocol version and the client capabilities",
        )
    method = str(message.method)
    expected = {"mcp-method": method, "mcp-protocol-version": version}
    if method in ("tools/call", "prompts/get", "resources/read"):
        expected["mcp-name"] = str(routing.name if routing.name is not None else routing.uri)
    for header, value in expected.items():
        sent = request.header(header)
        if sent is None:
            raise McpError(HEADER_MISMATCH, f"Header mismatch: {header} is required")
        if _decoded(sent) != value:
            raise McpError(HEADER_MISMATCH, f"Header mismatch: {header} does not match the body")
    if version != versions.MODERN:
        raise McpError(
            UNSUPPORTED_VERSION,
            "Unsupported protocol version",
            {"supported": list(versions.SUPPORTED), "requested": version},
        )


def _decoded(value: str) -> str:
    """An ``Mcp-Name`` value, decoding the ``=?base64?...?=`` form clients use for non-ASCII."""
    if value.startswith("=?base64?") and value.endswith("?="):
        import base64  # noqa: PLC0415 - rare path

        try:
            return base64.b64decode(value[9:-2], validate=True).decode("utf-8")
        except ValueError:
            return "\x00invalid"
    return value


class McpEndpoint:
    """The ``/mcp`` routes."""

    def __init__(self, services: McpServices, settings: McpHttpSettings) -> None:
        self._services = services
        self._settings = settings

    async def post(self, request: McpRequest) -> AsgiReply:
        """A JSON-RPC message from the client."""
        accept = request.header("accept") or ""
        if not (accepts(accept, "application/json") or accepts(accept, "text/event-stream")):
            failure = McpError(INVALID_REQUEST, "Not Acceptable: accept application/json")
            return jsonrpc_reply(failure, 406)
        try:
            parsed = messages.parse(await read_body(request.receive, MAX_BODY))
        except McpError as failure:
            return jsonrpc_reply(failure, 400)
        session_id = request.header("mcp-session-id")
        version_header = request.header("mcp-protocol-version")
        if isinstance(parsed, list):
            return await self._batch(request, parsed, session_id)
        if parsed.method == "initialize":
            return await self._initialize(request, parsed)
        legacy_header = version_header in versions.HANDSHAKE
        if (
            session_id is not None
            or legacy_header
            or (version_header is None and not _has_meta(parsed))
        ):
            return await self._legacy(request, parsed, session_id)
        return await self._modern(request, parsed)

    async def get(self, request: McpRequest) -> AsgiReply:
        """The 2025-era server stream of a session (405 in the stateless era)."""
        session_id = request.header("mcp-session-id")
        if session_id is None:
            return jsonrpc_reply(_not_allowed(), 405, ALLOW_POST)
        if not accepts(request.header("accept") or "", "text/event-stream"):
            failure = McpError(INVALID_REQUEST, "Not Acceptable: accept text/event-stream")
            return jsonrpc_reply(failure, 406)
        session = await self._session(request, session_id)
        if session is None:
            return _unknown_session()
        stream = SessionStream(self._services, session, request.user)
        return await stream.open(request.header("last-event-id"))

    async def delete(self, request: McpRequest) -> AsgiReply:
        """End a 2025-era session (405 in the stateless era)."""
        session_id = request.header("mcp-session-id")
        if session_id is None:
            return jsonrpc_reply(_not_allowed(), 405, ALLOW_POST)
        session = await self._session(request, session_id)
        if session is None:
            return _unknown_session()
        await self._services.sessions().delete(session.session_id)
        return JsonBody(b"", status=204)

    async def _modern(self, request: McpRequest, message: Incoming) -> AsgiReply:
        if not message.is_request:
            return JsonBody(b"", status=202)
        try:
            _check_modern(request, message)
        except McpError as failure:
            return JsonBody(messages.error(_id(message), failure), status=400)
        server = self._services.server()
        exchange = Exchange(principal=request.user, version=versions.MODERN)
        if not server.knows(str(message.method), modern=True):
            return JsonBody(server.unknown_method(message, exchange), status=404)
        reply = await server.answer(message, exchange)
        status = MODERN_STATUS.get(reply.error or 0, 200)
        return await _reply(reply.body, request, status)

    async def _initialize(self, request: McpRequest, message: Incoming) -> AsgiReply:
        try:
            body, session = await self._services.server().initialize(message, request.user)
        except McpError as failure:
            return JsonBody(messages.error(_id(message), failure), status=400)
        headers = ((SESSION_HEADER, session.session_id.encode()),)
        return await _reply(
            body, request, headers=headers, services=self._services, session=session
        )

    async def _legacy(
        self, request: McpRequest, message: Incoming, session_id: str | None
    ) -> AsgiReply:
        if session_id is None:
            failure = McpError(INVALID_REQUEST, "Bad Request: Mcp-Session-Id header is required")
            return jsonrpc_reply(failure, 400)
        session = await self._session(request, session_id)
        if session is None:
            return _unknown_session()
        version_header = request.header("mcp-protocol-version")
        if version_header is not None and version_header != session.protocol_version:
            failure = McpError(
                INVALID_REQUEST, f"Bad Request: unsupported MCP-Protocol-Version {version_header}"
            )
            return jsonrpc_reply(failure, 400)
        if not message.is_request:
            return JsonBody(b"", status=202)
        exchange = Exchange(
            principal=request.user, version=session.protocol_version, session=session
        )
        reply = await self._services.server().answer(message, exchange)
        return await _reply(reply.body, request, services=self._services, session=session)

    async def _batch(
        self,
        request: McpRequest,
        batch: list[Incoming | McpError],
        session_id: str | None,
    ) -> AsgiReply:
        """2025-03-26 allowed batches; later revisions did not."""
        session = await self._session(request, session_id) if session_id else None
        if session is None or session.protocol_version != "2025-03-26":
            failure = McpError(INVALID_REQUEST, "Invalid Request: batches are not supported")
            return jsonrpc_reply(failure, 400)
        exchange = Exchange(
            principal=request.user, version=session.protocol_version, session=session
        )
        server = self._services.server()
        replies = []
        for member in batch:
            if isinstance(member, McpError):  # JSON-RPC §6: each member is answered on its own
                replies.append(messages.error(None, member))
            elif member.is_request:
                replies.append((await server.answer(member, exchange)).body)
        if not replies:
            return JsonBody(b"", status=202)
        return JsonBody(b"[" + b",".join(replies) + b"]")

    async def _session(self, request: McpRequest, session_id: str) -> Session | None:
        """The session, if it exists and belongs to the caller's client."""
        session = await self._services.sessions().get(session_id)
        if session is None or session.client_id != request.user.client_id:
            return None
        return session


def _id(message: Incoming) -> messages.RequestId | None:
    return message.id if isinstance(message.id, int | str) else None


def _not_allowed() -> McpError:
    return McpError(INVALID_REQUEST, "Method Not Allowed: this endpoint takes POST requests")


def _unknown_session() -> JsonBody:
    failure = McpError(INVALID_REQUEST, "Not Found: unknown or ended session")
    return jsonrpc_reply(failure, 404)


METHODS = {"POST": McpEndpoint.post, "GET": McpEndpoint.get, "DELETE": McpEndpoint.delete}


def handlers(
    endpoint: McpEndpoint, *, protect: Callable[[ASGIApp], ASGIApp]
) -> list[ASGIRouteHandler]:
    """The ``/mcp`` route, behind ``protect`` (transport security and authentication).

    A plain ASGI route: the endpoint reads its own body (within ``MAX_BODY``) and headers, so
    Litestar's signature parsing and response building would only add a fifth to every call.
    """

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        method = METHODS.get(scope["method"])  # type: ignore[typeddict-item]
        if method is None:
            reply: AsgiReply = jsonrpc_reply(
                McpError(INVALID_REQUEST, "Method Not Allowed"), 405, ALLOW_ANY
            )
        else:
            reply = await method(endpoint, McpRequest(scope, receive))
        await reply(scope, receive, send)

    protected = protect(serve)

    @asgi("/mcp", is_mount=False, copy_scope=False)
    async def mcp(scope: Scope, receive: Receive, send: Send) -> None:
        await protected(scope, receive, send)

    return [mcp]
