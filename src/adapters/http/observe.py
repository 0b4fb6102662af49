"""The outermost layer of every HTTP request: its id, its access-log line, its metrics.

It wraps Litestar's router (not a route's middleware stack), so it also sees the requests no
route matched (404, 405) and the errors the exception handlers answer. Labels and log fields
name a request's route template (``/calculator/add``), never its path, so neither a client's
ids nor its typos become series; requests no route matched share ``<unmatched>``.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from src.adapters.http.errors import LIMIT
from src.adapters.http.request_id import HEADER, request_id_of
from src.application.context import request_id
from src.application.ports import NO_METRICS, Metrics

access_log = logging.getLogger("calcmcp.access")
UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods counted by name; any other a client invents is counted as ``OTHER``."""


def metrics_of(scope: Scope) -> Metrics:
    """The application's metrics, for a response that has only its ASGI scope (a stream)."""
    metrics: Metrics = scope["litestar_app"].state.get("metrics", NO_METRICS)
    return metrics


class _Response:
    """The ``send`` the application is given: notes the status and adds the request id.

    A plain call that returns the server's own ``send`` awaitable, not a coroutine of its own:
    an event stream's every write passes through here, and a frame per write would cost a
    broadcast to ten thousand streams ten thousand frames.
    """

    __slots__ = ("_send", "id", "status")

    def __init__(self, send: Send, id_: bytes) -> None:
        self._send = send
        self.id = id_
        self.status = 500  # if the application ends without answering, the server says 500

    def __call__(self, message: Message) -> Any:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers: Any = message.setdefault("headers", [])
            headers.append((HEADER, self.id))
        return self._send(message)


class Observe:
    """Sets the request id, then counts and logs the request once its response has ended.

    Args:
        app: what is wrapped (Litestar's exception handling around its router).
        metrics: where requests are counted.
        access_log: whether to write a line per request.
        quiet: route templates neither counted nor logged (health probes, the scrape itself).
    """

    __slots__ = ("_access", "_app", "_metrics", "_quiet")

    def __init__(
        self, app: ASGIApp, *, metrics: Metrics, access_log: bool, quiet: frozenset[str]
    ) -> None:
        self._app = app
        self._metrics = metrics
        self._access = access_log
        self._quiet = quiet

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve the request with its id set; count and log it when it is done."""
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        response = _Response(send, request_id_of(scope["headers"]))
        token = request_id.set(response.id.decode("ascii"))
        started = time.perf_counter()
        try:
            await self._app(scope, receive, response)
        finally:
            self._done(scope, response, time.perf_counter() - started)
            request_id.reset(token)

    def _done(self, scope: Scope, response: _Response, seconds: float) -> None:
        route = scope.get("path_template") or UNMATCHED
        if route in self._quiet:
            return
        sent: str = scope["method"]  # type: ignore[typeddict-item]  # an HTTP scope's
        method = sent if sent in METHODS else "OTHER"
        self._metrics.http_request(route, method, response.status, seconds)
        if response.status == 429:
            self._metrics.rate_limited(str(cast("dict[str, Any]", scope).get(LIMIT, "other")))
        if self._access and access_log.isEnabledFor(logging.INFO):
            client = scope.get("client")
            fields = {
                "method": method,
                "route": route,
                "status": response.status,
                "duration_ms": round(seconds * 1000, 3),
                "request_id": response.id.decode("ascii"),
                "client": client[0] if client else None,
            }
            access_log.info("%s %s %d", method, route, response.status, extra={"fields": fields})
