"""The Litestar application factory: routes, dependencies, error mapping, OpenAPI docs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from litestar import Litestar, Router, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.response import Redirect

from src.adapters.http import calculator, console, events, oauth, operations, token
from src.adapters.http.auth import BearerPrincipal, bearer_auth
from src.adapters.http.errors import EXCEPTION_HANDLERS
from src.adapters.http.events import StreamOptions
from src.adapters.http.mcp import McpServices
from src.adapters.http.mcp_common import McpHttpSettings
from src.adapters.http.mcp_routes import mcp_routes, protected_resource_metadata
from src.adapters.http.observe import Observe
from src.adapters.http.openapi import openapi_config
from src.adapters.http.sse import FrameCache
from src.application.authenticate import Authenticate
from src.application.broadcast import Broadcast
from src.application.calculate import Calculate
from src.application.check_readiness import CheckReadiness
from src.application.introspect_token import IntrospectToken
from src.application.issue_stream_ticket import IssueStreamTicket
from src.application.issue_token import IssueToken
from src.application.ports import NO_METRICS, Metrics, TokenCodec
from src.application.redeem_stream_ticket import RedeemStreamTicket
from src.application.revoke_token import RevokeToken
from src.application.security import Scope
from src.application.stream_events import StreamEvents

SCOPE_DESCRIPTIONS = {
    Scope.CALCULATOR.value: "Use the calculator",
    Scope.SSE.value: "Follow the event stream and broadcast messages",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpServices:
    """Zero-argument factories of the use cases the routes run (from the container)."""

    issue_token: Callable[[], IssueToken]
    revoke_token: Callable[[], RevokeToken]
    introspect_token: Callable[[], IntrospectToken]
    token_codec: Callable[[], TokenCodec]
    authenticate: Callable[[], Authenticate]
    calculate: Callable[[], Calculate]
    broadcast: Callable[[], Broadcast]
    stream_events: Callable[[], StreamEvents]
    issue_stream_ticket: Callable[[], IssueStreamTicket]
    redeem_stream_ticket: Callable[[], RedeemStreamTicket]
    mcp: McpServices | None = None
    readiness: Callable[[], CheckReadiness] | None = None
    metrics: Metrics = NO_METRICS
    metrics_page: operations.MetricsPage | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpSettings:
    """What the HTTP adapter needs to know about its deployment.

    Attributes:
        resource: this server's resource URL: the audience its tokens must carry.
        issuer: the authorization server's issuer identifier.
        ping_interval: seconds between keep-alive comments on an idle event stream.
        retry_ms: the reconnection delay event-stream clients are told.
        version: the service version shown in the docs.
        metrics_scope: the scope ``/metrics`` needs (empty: none, no token).
        access_log: whether each request is logged (``calcmcp.access``).
    """

    resource: str
    issuer: str
    ping_interval: float = 15.0
    retry_ms: int = 3000
    version: str = "0.1.0"
    mcp: McpHttpSettings | None = None
    metrics_scope: str = ""
    access_log: bool = True


@get("/", include_in_schema=False, sync_to_thread=False)
def index() -> dict[str, str]:
    """What this server is, and where its docs are."""
    return {
        "service": "calcmcp",
        "docs": "/docs",
        "redoc": "/redoc",
        "openapi": "/schema/openapi.json",
    }


@get("/docs", include_in_schema=False, sync_to_thread=False)
def docs() -> Redirect:
    """Swagger UI."""
    return Redirect("/schema/swagger")


@get("/redoc", include_in_schema=False, sync_to_thread=False)
def redoc() -> Redirect:
    """ReDoc."""
    return Redirect("/schema/redoc")


def _provide(factory: Callable[[], Any]) -> Provide:
    # Litestar inspects a provider's signature; container providers are not inspectable.
    def provide() -> Any:
        return factory()

    return Provide(provide, sync_to_thread=False)


def create_app(
    services: HttpServices,
    settings: HttpSettings,
    *,
    on_startup: Sequence[Callable[[], Any]] = (),
    on_shutdown: Sequence[Callable[[], Any]] = (),
) -> Litestar:
    """Build the Litestar application around the use cases."""
    metadata = oauth.ServerMetadata(
        issuer=settings.issuer, base_url=settings.resource, scopes=tuple(SCOPE_DESCRIPTIONS)
    )
    options = StreamOptions(
        resource=settings.resource,
        ping_interval=settings.ping_interval,
        retry_ms=settings.retry_ms,
        frames=FrameCache(),
    )
    mcp_handlers: list[Any] = []
    stop: list[Callable[[], None]] = []
    if services.mcp is not None and settings.mcp is not None:
        routers = mcp_routes(services.mcp, settings.mcp, services.authenticate)
        mcp_handlers = [
            *protected_resource_metadata(
                settings.mcp, issuer=settings.issuer, api_resource=settings.resource
            ),
            *routers,
        ]
        stop.append(services.mcp.mailboxes().close_all)
    app = Litestar(
        route_handlers=[
            *_operations_handlers(services, settings),
            *mcp_handlers,
            index,
            docs,
            redoc,
            *console.handlers(),
            *token.handlers(services.issue_token),
            *oauth.handlers,
            *calculator.handlers(
                services.calculate,
                principal=BearerPrincipal(
                    authenticate=services.authenticate, resource=settings.resource
                ),
            ),
            # every route on this router needs a bearer token
            Router(
                "/",
                route_handlers=[
                    events.events,
                    events.broadcast,
                    events.issue_ticket,
                ],
                middleware=[
                    bearer_auth(
                        authenticate=services.authenticate,
                        resource=settings.resource,
                        redeem_ticket=services.redeem_stream_ticket,
                    )
                ],
            ),
        ],
        dependencies={
            "revoke_token": _provide(services.revoke_token),
            "introspect_token": _provide(services.introspect_token),
            "public_keys": _provide(lambda: services.token_codec().public_keys()),
            "metadata": _provide(lambda: metadata),
            "broadcast": _provide(services.broadcast),
            "stream_events": _provide(services.stream_events),
            "issue_stream_ticket": _provide(services.issue_stream_ticket),
        },
        exception_handlers=cast("Any", EXCEPTION_HANDLERS),
        openapi_config=openapi_config(
            title="calcmcp",
            version=settings.version,
            scopes=SCOPE_DESCRIPTIONS,
            written={**token.path_items(), **calculator.path_items()},
            schemas={**token.SCHEMAS, **calculator.SCHEMAS},
        ),
        state=State({"stream_options": options, "stop": stop, "metrics": services.metrics}),
        # logging is configured once, by the composition root; Litestar's default would put a
        # queue handler on the root logger that costs a token request a third of its time
        logging_config=None,
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
    )
    # around the router, not on the routes: unmatched requests are counted and logged too
    app.asgi_handler = Observe(
        app.asgi_handler,
        metrics=services.metrics,
        access_log=settings.access_log,
        quiet=operations.QUIET,
    )
    return app


def _operations_handlers(services: HttpServices, settings: HttpSettings) -> list[Any]:
    """Health and metrics routes, those that are configured."""
    found: list[Any] = []
    if services.readiness is not None:
        found += operations.health_handlers(services.readiness)
    if services.metrics_page is not None:
        found += operations.metrics_handlers(
            services.metrics_page,
            scope=settings.metrics_scope,
            authenticate=services.authenticate,
            resource=settings.resource,
        )
    return found
