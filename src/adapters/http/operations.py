"""For the people who run the service: ``/health/live``, ``/health/ready`` and ``/metrics``.

The health routes need no token (a load balancer asks without one). ``/metrics`` needs a token
with the configured scope when there is one, else none (keep it off the public interface then).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Request, Response, Router, get
from litestar.handlers import HTTPRouteHandler

from src.adapters.http.auth import bearer_auth
from src.adapters.http.errors import NO_STORE
from src.adapters.http.openapi import response_spec
from src.application.authenticate import Authenticate
from src.application.check_readiness import CheckReadiness
from src.application.security import Principal, Scope, require_scope

log = logging.getLogger("calcmcp.health")
LIVE, READY, METRICS = "/health/live", "/health/ready", "/metrics"
QUIET = frozenset({LIVE, READY, METRICS})
"""Routes left out of the access log and the request metrics: probed every few seconds."""
MetricsPage = Callable[[str], tuple[bytes, str]]
"""The metrics page for an ``Accept`` header: its body and content type."""


class Status(msgspec.Struct):
    """The process is up."""

    status: str


class Check(msgspec.Struct, omit_defaults=True):
    """One dependency's answer (``error``: its kind, e.g. ``timeout``)."""

    name: str
    ok: bool
    latency_ms: float
    error: str | None = None


class ReadinessBody(msgspec.Struct):
    """Whether every configured dependency answers (``status``: ``ok`` or ``unavailable``)."""

    status: str
    checks: list[Check]


@get(LIVE, tags=["Operations"], summary="Liveness: the process answers", sync_to_thread=False)
def live() -> Response[Status]:
    """Always 200 while the process can answer at all."""
    return Response(Status(status="ok"), headers=NO_STORE)


def health_handlers(readiness: Callable[[], CheckReadiness]) -> list[HTTPRouteHandler]:
    """``/health/live`` and ``/health/ready``."""

    @get(
        READY,
        tags=["Operations"],
        summary="Readiness: every configured dependency answers",
        description=(
            "Checks the data directory (a file can be written), Redis (`PING`) and PostgreSQL "
            "(`SELECT 1`) when they are configured, each within 0.5 s: 200 when all pass, "
            "503 otherwise."
        ),
        responses={503: response_spec(ReadinessBody, "A dependency does not answer")},
    )
    async def ready() -> Response[ReadinessBody]:
        result = await readiness().execute()
        checks = []
        for check in result.checks:
            if not check.ok:
                log.warning("readiness check %s failed: %s", check.name, check.detail)
            checks.append(Check(check.name, check.ok, check.latency_ms, check.error))
        status = "ok" if result.ready else "unavailable"
        return Response(
            ReadinessBody(status=status, checks=checks),
            status_code=200 if result.ready else 503,
            headers=NO_STORE,
        )

    return [live, ready]


def metrics_handlers(
    page: MetricsPage, *, scope: str, authenticate: Callable[[], Authenticate], resource: str
) -> list[HTTPRouteHandler | Router]:
    """``/metrics``: open, or behind a bearer token with ``scope`` (when not empty)."""

    @get(METRICS, include_in_schema=False, sync_to_thread=False)
    def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
        if scope:
            principal: Principal = request.user
            require_scope(principal, Scope(scope))
        body, content_type = page(request.headers.get("accept", ""))
        # as a header, not ``media_type``: Litestar appends a second ``charset`` to a text/* one
        headers = {**NO_STORE, "Content-Type": content_type}
        return Response(body, media_type=content_type, headers=headers)

    if not scope:
        return [metrics]
    guard = bearer_auth(authenticate=authenticate, resource=resource)
    return [Router("/", route_handlers=[metrics], middleware=[guard])]
