"""What MCP's HTTP transports share: transport security, and JSON-RPC answers over HTTP."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from litestar.enums import ScopeType
from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from src.adapters.http.responses import JsonBody
from src.adapters.mcp import messages
from src.adapters.mcp.messages import McpError

MAX_BODY = 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class McpHttpSettings:
    """Where the MCP endpoints are, and who may call them.

    Attributes:
        endpoint: the canonical URI of the Streamable HTTP endpoint (its tokens' audience).
        sse_endpoint: the canonical URI of the legacy HTTP+SSE endpoint (its tokens' audience).
        metadata: the protected-resource metadata URL of each endpoint, by endpoint URI.
        scopes: the scopes a client should ask for.
        allowed_origins: ``Origin`` values accepted (shell-style patterns); no Origin is fine.
        allowed_hosts: ``Host`` values accepted (shell-style patterns, with or without port).
    """

    endpoint: str
    sse_endpoint: str
    metadata: dict[str, str]
    scopes: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    allowed_hosts: tuple[str, ...]

    def challenge(self, endpoint: str) -> dict[str, str]:
        """The extra ``WWW-Authenticate`` parameters of ``endpoint`` (RFC 9728 §5.1).

        A bare 401 asks for the least that uses the endpoint (the first scope, ``calculator``):
        clients request what a challenge names, and a client allowed only ``calculator`` must
        still get in. Tools that need more answer 403 ``insufficient_scope`` naming it, and
        clients step up.
        """
        return {"resource_metadata": self.metadata[endpoint], "scope": self.scopes[0]}


def jsonrpc_reply(
    failure: McpError, status: int, headers: Iterable[tuple[bytes, bytes]] = ()
) -> JsonBody:
    """An HTTP error carrying a JSON-RPC error body with ``id: null``."""
    return JsonBody(messages.error(None, failure), status=status, headers=tuple(headers))


def _matches(value: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``value`` matches a pattern, where ``*`` is the only wildcard.

    Not ``fnmatch``: there ``[::1]`` would be a character class, not the IPv6 loopback.
    """
    value = value.lower()
    return any(_pattern(pattern).fullmatch(value) for pattern in patterns)


@functools.lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.lower().split("*")))


class TransportGuard:
    """Refuses requests from unexpected origins (403) or for unexpected hosts (421).

    A browser page on another site could otherwise drive a local MCP server (DNS rebinding):
    both checks run on every request to the MCP endpoints, whatever address the server binds.
    """

    def __init__(self, app: ASGIApp, *, settings: McpHttpSettings) -> None:
        self._app = app
        self._settings = settings
        # a handful of distinct hosts and origins arrive; each is matched once
        self._host_allowed = functools.lru_cache(maxsize=256)(self._check_host)
        self._origin_allowed = functools.lru_cache(maxsize=256)(self._check_origin)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check, then hand over."""
        if scope["type"] == ScopeType.HTTP:
            host, origin = b"", None
            for name, value in scope["headers"]:
                if name == b"host":
                    host = value
                elif name == b"origin":
                    origin = value
            if origin is not None and not self._origin_allowed(origin):
                failure = McpError(messages.INVALID_REQUEST, "Forbidden: origin not allowed")
                await jsonrpc_reply(failure, 403)(scope, receive, send)
                return
            if not self._host_allowed(host):
                failure = McpError(messages.INVALID_REQUEST, "Misdirected Request: unknown host")
                await jsonrpc_reply(failure, 421)(scope, receive, send)
                return
        await self._app(scope, receive, send)

    def _check_host(self, host: bytes) -> bool:
        return _matches(host.decode("latin-1"), self._settings.allowed_hosts)

    def _check_origin(self, raw: bytes) -> bool:
        origin = raw.decode("latin-1")
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        return bool(parts.scheme and parts.netloc) and _matches(
            origin.rstrip("/"), self._settings.allowed_origins
        )


def transport_guard(settings: McpHttpSettings) -> DefineMiddleware:
    """The transport-security middleware for the MCP routes."""
    return DefineMiddleware(TransportGuard, settings=settings)


@functools.lru_cache(maxsize=64)  # clients send the same few Accept headers over and over
def _media_types(accept: str) -> frozenset[str]:
    return frozenset(part.split(";")[0].strip().lower() for part in accept.split(","))


def accepts(accept: str, media_type: str) -> bool:
    """Whether an ``Accept`` header admits ``media_type`` (exactly, or by a wildcard)."""
    kinds = _media_types(accept)
    major = media_type.split("/", maxsplit=1)[0]
    return media_type in kinds or f"{major}/*" in kinds or "*/*" in kinds
