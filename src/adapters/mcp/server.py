"""The MCP method dispatcher: one request in, one result (or JSON-RPC error) out.

Transports decide the era of each exchange and hold what it needs (the principal, the
negotiated version, the session); this module answers the methods the same way for all of them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import msgspec

from src.adapters.mcp import messages, metering, versions
from src.adapters.mcp.messages import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    RESOURCE_NOT_FOUND,
    UNSUPPORTED_VERSION,
    Incoming,
    McpError,
)
from src.adapters.mcp.resources import EVENTS_URI, ResourceRead, Resources
from src.adapters.mcp.tools import ToolCall, Tools, visible
from src.application.errors import InsufficientScope, ServiceUnavailable
from src.application.ports import NO_METRICS, Clock, IdSource, Metrics, Session, SessionStore
from src.application.security import Principal

log = logging.getLogger("calcmcp.mcp")
LOG_LEVELS = frozenset(
    {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}
)
INSTRUCTIONS = (
    "An exact decimal calculator (add, subtract, multiply, divide) and an event broadcast. "
    "Operands may be JSON numbers or decimal strings; results are exact."
)


@dataclass(frozen=True, slots=True)
class Reply:
    """A response body, and the JSON-RPC error code it carries (``None`` for a result)."""

    body: bytes
    error: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """What a transport knows about one message's context.

    ``transport`` is ``http`` (Streamable HTTP), ``http+sse`` (the 2024-11-05 transport) or
    ``stdio``.
    """

    principal: Principal
    version: str
    session: Session | None = None
    transport: str = "http"

    @property
    def modern(self) -> bool:
        """Whether this is the stateless 2026-07-28 era."""
        return self.version == versions.MODERN

    @property
    def era(self) -> str:
        """The era requests are counted under (see :data:`metering.ERAS`)."""
        if self.transport != "http":
            return self.transport
        return "modern" if self.modern else "handshake"


class ModernMeta(msgspec.Struct):
    """The ``_meta`` every 2026-07-28 request carries."""

    version: str = msgspec.field(name=versions.META_VERSION)
    capabilities: dict[str, Any] = msgspec.field(name=versions.META_CAPABILITIES)


class _WithMeta(msgspec.Struct):
    meta: ModernMeta = msgspec.field(name="_meta")


class Initialize(msgspec.Struct):
    """``initialize`` params."""

    protocolVersion: str  # noqa: N815 - the wire name
    capabilities: dict[str, Any] = msgspec.field(default_factory=dict)
    clientInfo: dict[str, Any] = msgspec.field(default_factory=dict)  # noqa: N815


class SetLevel(msgspec.Struct):
    """``logging/setLevel`` params."""

    level: str


def meta_version(message: Incoming) -> str:
    """The protocol version a 2026-era request's ``_meta`` names (spoken or not).

    Raises:
        McpError: ``INVALID_PARAMS`` when ``_meta`` lacks the version or client capabilities.
    """
    meta: ModernMeta = messages.params(message, _WithMeta).meta
    return meta.version


def modern_version(message: Incoming) -> str:
    """The protocol version a 2026-era request's ``_meta`` names, which must be spoken here.

    Raises:
        McpError: ``INVALID_PARAMS`` when ``_meta`` lacks the version or client capabilities,
            ``UNSUPPORTED_VERSION`` when the version is not one this server speaks.
    """
    meta: ModernMeta = messages.params(message, _WithMeta).meta
    if meta.version != versions.MODERN:
        raise McpError(
            UNSUPPORTED_VERSION,
            "Unsupported protocol version",
            {"supported": list(versions.SUPPORTED), "requested": meta.version},
        )
    return meta.version


class McpServer:
    """Answers MCP methods for a principal.

    Args:
        tools: the tools and how they run.
        resources: the events resource.
        sessions: where 2025-era sessions are kept.
        ids: session ids.
        clock: session creation times.
        metrics: where answered requests are counted (method, tool, era, outcome).
        name: the server's name; version: its version (both in ``serverInfo``).
    """

    def __init__(
        self,
        *,
        tools: Tools,
        resources: Resources,
        sessions: SessionStore,
        ids: IdSource,
        clock: Clock,
        metrics: Metrics = NO_METRICS,
        name: str = "calcmcp",
        version: str = "0.1.0",
    ) -> None:
        self._tools = tools
        self._metrics = metrics
        self._resources = resources
        self._sessions = sessions
        self._ids = ids
        self._clock = clock
        self.info = {"name": name, "version": version, "title": "calcmcp calculator"}
        self._methods: dict[str, Callable[[Incoming, Exchange], Awaitable[Any]]] = {
            "tools/list": self._tools_list,
            "tools/call": self._tools_call,
            "resources/list": self._resources_list,
            "resources/read": self._resources_read,
            "resources/templates/list": self._templates_list,
        }
        self._modern_only = {"server/discover": self._discover}
        self._legacy_only = {
            "ping": self._ping,
            "logging/setLevel": self._set_level,
            "resources/subscribe": self._subscribe,
            "resources/unsubscribe": self._unsubscribe,
        }

    async def answer(self, message: Incoming, exchange: Exchange) -> Reply:
        """The response to a request (never raises, but for :class:`InsufficientScope`)."""
        request_id = message.id if isinstance(message.id, int | str) else None
        method = str(message.method)
        handler = self._methods.get(method) or (
            self._modern_only if exchange.modern else self._legacy_only
        ).get(method)
        outcome = "error"
        try:
            if handler is None:
                raise McpError(METHOD_NOT_FOUND, f"Method not found: {method}")
            result = await handler(message, exchange)
            if exchange.modern:
                result.setdefault("resultType", "complete")
                result.setdefault("_meta", {})[versions.META_SERVER_INFO] = self.info
            outcome = "tool_error" if result.get("isError") else "ok"
        except McpError as failure:
            return Reply(messages.error(request_id, failure), failure.code)
        except (InsufficientScope, ServiceUnavailable):
            raise  # the transport answers these (HTTP: 403 challenge, 503 with Retry-After)
        except Exception:
            log.exception("MCP method %s failed", message.method)
            internal = McpError(INTERNAL_ERROR, "Internal error")
            return Reply(messages.error(request_id, internal), INTERNAL_ERROR)
        finally:
            labels = metering.labels(message, known=handler is not None)
            self._metrics.mcp_call(*labels, exchange.era, outcome)
        return Reply(messages.result(request_id, result))

    def unknown_method(self, message: Incoming, exchange: Exchange) -> bytes:
        """The error answering a method the era does not have (counted, as ``<unknown>``), for
        a transport that refuses it before dispatch (the 2026-07-28 era's 404)."""
        self._metrics.mcp_call(metering.UNKNOWN, "", exchange.era, "error")
        failure = McpError(METHOD_NOT_FOUND, f"Method not found: {message.method}")
        return messages.error(message.id if isinstance(message.id, int | str) else None, failure)

    def knows(self, method: str, *, modern: bool) -> bool:
        """Whether ``method`` exists in the era."""
        extra = self._modern_only if modern else self._legacy_only
        return method in self._methods or method in extra

    async def open_session(self, principal: Principal, version: str) -> Session:
        """A new session for ``principal`` (its id cryptographically random)."""
        session = Session(
            session_id=self._ids.new_id(),
            client_id=principal.client_id,
            protocol_version=version,
            created_at=self._clock.now(),
        )
        await self._sessions.put(session)
        return session

    async def initialize(
        self,
        message: Incoming,
        principal: Principal,
        session: Session | None = None,
        *,
        era: str = "handshake",
    ) -> tuple[bytes, Session]:
        """Answer ``initialize``: negotiate a version; open a session (or update ``session``).

        Raises:
            McpError: ``INVALID_PARAMS`` for malformed initialize params.
        """
        try:
            answer = await self._initialize(message, principal, session)
        except BaseException:
            self._metrics.mcp_call("initialize", "", era, "error")
            raise
        self._metrics.mcp_call("initialize", "", era, "ok")
        return answer

    async def _initialize(
        self, message: Incoming, principal: Principal, session: Session | None
    ) -> tuple[bytes, Session]:
        request = messages.params(message, Initialize)
        version = versions.negotiate(request.protocolVersion)
        if session is None:
            session = await self.open_session(principal, version)
        else:
            session = replace(session, protocol_version=version)
            await self._sessions.put(session)
        result = {
            "protocolVersion": version,
            "capabilities": self.capabilities(modern=False),
            "serverInfo": self.info,
            "instructions": INSTRUCTIONS,
        }
        request_id = message.id if isinstance(message.id, int | str) else None
        return messages.result(request_id, result), session

    def capabilities(self, *, modern: bool) -> dict[str, Any]:
        """What this server offers."""
        capabilities: dict[str, Any] = {
            "tools": {"listChanged": False},
            "resources": {"subscribe": not modern, "listChanged": False},
            "extensions": {versions.CLIENT_CREDENTIALS_EXTENSION: {}},
        }
        if not modern:
            capabilities["logging"] = {}
        return capabilities

    async def _discover(self, message: Incoming, exchange: Exchange) -> dict[str, Any]:
        return {
            "supportedVersions": list(versions.SUPPORTED),
            "capabilities": self.capabilities(modern=True),
            "serverInfo": self.info,
            "instructions": INSTRUCTIONS,
            "ttlMs": 3_600_000,
            "cacheScope": "public",
        }

    async def _ping(self, message: Incoming, exchange: Exchange) -> dict[str, Any]:
        return {}

    async def _set_level(self, message: Incoming, exchange: Exchange) -> dict[str, Any]:
        level = messages.params(message, SetLevel).level
        if level not in LOG_LEVELS:
            raise McpError(INVALID_PARAMS, f"Invalid params: unknown log level {level!r}")
        if exchange.session is not None:
            await self._sessions.put(replace(exchange.session, log_level=level))
        return {}

    async def _tools_list(self, message: Incoming, exchange: Exchange) -> dict[str, Any]:
        result: dict[str, Any] = {"tools": visible(exchange.principal)}
        return _cacheable(result, exchange, ttl_ms=300_000)

    async def _tools_call(self, message: Incoming, exchange: Exchange) -> dict[str, Any]:
        call = messages.params(message, ToolCall)
        return await self._tools.call(exchange.principal, call)

    async def _resources_list(self, message: Incoming, exchange: Exchange) -> dict[str, Any]:
        result: dict[str, Any] = {"resources": self._resources.visible(exchange.principal)}
        return _cacheable(result, exchange, ttl_ms=0)

    async def _templates_list(self, message: Incoming, exchange: Exchange) -> dict[str, Any]:
        return _cacheable({"resourceTemplates": []}, exchange, ttl_ms=300_000)

    async def _resources_read(self, message: Incoming, exchange: Exchange) -> dict[str, Any]:
        self._known_uri(message, exchange)
        contents = await self._resources.read(exchange.principal)
        return _cacheable({"contents": contents}, exchange, ttl_ms=0)

    async def _subscribe(self, message: Incoming, exchange: Exchange) -> dict[str, Any]:
        uri = self._known_uri(message, exchange)
        if exchange.session is not None:
            subscribed = exchange.session.subscriptions | {uri}
            await self._sessions.put(replace(exchange.session, subscriptions=subscribed))
        return {}

    async def _unsubscribe(self, message: Incoming, exchange: Exchange) -> dict[str, Any]:
        uri = self._known_uri(message, exchange)
        if exchange.session is not None:
            subscribed = exchange.session.subscriptions - {uri}
            await self._sessions.put(replace(exchange.session, subscriptions=subscribed))
        return {}

    def _known_uri(self, message: Incoming, exchange: Exchange) -> str:
        uri: str = messages.params(message, ResourceRead).uri
        if not self._resources.exists(uri):
            code = INVALID_PARAMS if exchange.modern else RESOURCE_NOT_FOUND
            raise McpError(code, f"Resource not found: {uri}", {"uri": uri})
        return uri


def _cacheable(result: dict[str, Any], exchange: Exchange, *, ttl_ms: int) -> dict[str, Any]:
    """2026-07-28 list and read results say how long they may be cached, and by whom."""
    if exchange.modern:
        result["ttlMs"] = ttl_ms
        result["cacheScope"] = "private"  # they depend on the caller's scopes
    return result


__all__ = ["EVENTS_URI", "Exchange", "McpServer", "Reply", "meta_version", "modern_version"]
