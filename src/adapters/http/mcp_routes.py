"""The MCP routes assembled: RFC 9728 metadata, and the two transports behind their guards."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Router, get
from litestar.handlers import ASGIRouteHandler, HTTPRouteHandler
from litestar.middleware.base import DefineMiddleware

from src.adapters.http import mcp, mcp_sse
from src.adapters.http.auth import bearer_auth
from src.adapters.http.mcp import McpEndpoint, McpServices
from src.adapters.http.mcp_common import McpHttpSettings, transport_guard
from src.adapters.http.mcp_sse import LegacySse
from src.application.authenticate import Authenticate

WELL_KNOWN = "/.well-known/oauth-protected-resource"


def protected_resource_metadata(
    settings: McpHttpSettings, *, issuer: str, api_resource: str
) -> list[HTTPRouteHandler]:
    """RFC 9728 metadata: at the root for the REST API, and per MCP endpoint."""
    documents = {
        WELL_KNOWN: api_resource,
        f"{WELL_KNOWN}/mcp": settings.endpoint,
        f"{WELL_KNOWN}/sse": settings.sse_endpoint,
    }
    handlers = []
    for path, resource in documents.items():
        handlers.append(_metadata_handler(path, resource, issuer, settings.scopes))
    return handlers


def _metadata_handler(
    path: str, resource: str, issuer: str, scopes: tuple[str, ...]
) -> HTTPRouteHandler:
    document = {
        "resource": resource,
        "authorization_servers": [issuer],
        "scopes_supported": list(scopes),
        "bearer_methods_supported": ["header"],
        "resource_name": "calcmcp",
    }

    @get(
        path,
        tags=["OAuth 2.0"],
        summary="Protected resource metadata (RFC 9728)",
        sync_to_thread=False,
    )
    def metadata() -> dict[str, Any]:
        return document

    return metadata


def mcp_routes(
    services: McpServices,
    settings: McpHttpSettings,
    authenticate: Callable[[], Authenticate],
) -> list[Router | ASGIRouteHandler]:
    """The MCP routes: Streamable HTTP, and the legacy HTTP+SSE transport's router.

    ``/mcp`` is a plain ASGI route that checks the transport and authenticates inside: router
    middleware would put a second layer of exception handling around every call.
    """

    def protection(endpoint: str) -> list[DefineMiddleware]:
        challenge = settings.challenge(endpoint)
        auth = bearer_auth(authenticate=authenticate, resource=endpoint, challenge=challenge)
        return [transport_guard(settings), auth]

    guard, auth = protection(settings.endpoint)
    return [
        *mcp.handlers(McpEndpoint(services, settings), protect=lambda app: guard(auth(app))),
        Router(
            "/",
            route_handlers=mcp_sse.handlers(LegacySse(services)),
            middleware=protection(settings.sse_endpoint),
        ),
    ]
