"""``/metrics``: each metric moved by a real request through the app built by the real factory.

Event streams are driven with the MCP suite's ASGI harness (:func:`asgi_stream`), which reads
what an endless response sent so far and then disconnects; a slow subscriber is one whose
server ``send`` stops returning.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from litestar.testing import AsyncTestClient
from litestar.types import Message, Receive, Scope, Send

from src.bootstrap import Container
from tests.adapters.http.conftest import (
    DEV_ID,
    EXTRA_CLIENTS,
    SSE_ONLY_ID,
    SSE_ONLY_SECRET,
    bearer,
)
from tests.adapters.http.test_mcp_protocol import (
    LATEST_HANDSHAKE,
    SSE_ENDPOINT,
    Stream,
    asgi_stream,
    assert_error,
    assert_result,
    fetch_token,
    legacy_headers,
    legacy_sse,
    open_session,
    post_legacy,
    post_modern,
    request,
    running,
    serving,
)
from tests.e2e.conftest import broadcast
from tests.metrics_support import label_values, samples, value

pytestmark = pytest.mark.anyio

Http = AsyncTestClient[Any]
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
REQUESTS = "calcmcp_http_requests_total"
LATENCY = "calcmcp_http_request_duration_seconds"
STREAMS = "calcmcp_sse_streams_open"
MCP_CALLS = "calcmcp_mcp_calls_total"
OPS_ID, OPS_SECRET = "ops", "ops-secret-0123456789"


@pytest.fixture
async def http(container: Container) -> AsyncIterator[Http]:
    """The app, reached at its public URL (what MCP's host check wants)."""
    async with running(container) as test:
        yield test


async def scrape(http: Http, **headers: str) -> str:
    """The metrics page (which must be there)."""
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return response.text


async def api_token(http: Http) -> str:
    """A token of the development client, both scopes, for the REST API."""
    return await fetch_token(http, resource=None)


@asynccontextmanager
async def event_stream(
    http: Http, token: str, headers: dict[str, str] | None = None, *, app: Any = None
) -> AsyncIterator[Stream]:
    """An open ``GET /events``, past its ``retry:`` preamble."""
    sent = {**bearer(token), "Accept": "text/event-stream", **(headers or {})}
    async with asgi_stream(app or http.app, "GET", "/events", sent) as stream:
        assert stream.status == 200
        await stream.read_until(b"\n\n")
        yield stream


class Stalled:
    """The app behind a connection whose client stops reading after the first body part: the
    server's ``send`` does not return until :attr:`release` is set."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self.release = anyio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = 0

        async def stalling(message: Message) -> None:
            nonlocal parts
            if message["type"] == "http.response.body":
                parts += 1
                if parts > 1:
                    await self.release.wait()
            await send(message)

        await self._app(scope, receive, stalling)


# --- the page --------------------------------------------------------------------------------


async def test_the_page_is_prometheus_text(http: Http) -> None:
    response = await http.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"] == TEXT_FORMAT
    assert response.headers["cache-control"] == "no-store"
    assert "# TYPE calcmcp_http_requests_total counter" in response.text
    assert "# TYPE calcmcp_http_request_duration_seconds histogram" in response.text
    assert value(response.text, "calcmcp_tokens_issued_total") == 0
    assert value(response.text, "process_cpu_seconds_total") > 0  # one process: its figures


async def test_openmetrics_is_served_to_who_asks_for_it(http: Http) -> None:
    response = await http.get("/metrics", headers={"Accept": "application/openmetrics-text"})

    assert response.status_code == 200
    assert response.headers["content-type"] == OPENMETRICS
    assert response.text.endswith("# EOF\n")


# --- HTTP requests ---------------------------------------------------------------------------


async def test_a_request_is_counted_under_its_route_template_method_and_status(
    http: Http,
) -> None:
    token = await api_token(http)
    for _ in range(2):
        response = await http.post("/calculator/add?a=12345&b=67890", headers=bearer(token))
        assert response.status_code == 200
    refused = await http.post("/calculator/add?a=1&b=2")
    assert refused.status_code == 401

    page = await scrape(http)
    labels = {"route": "/calculator/add", "method": "POST"}
    assert value(page, REQUESTS, **labels, status="200") == 2
    assert value(page, REQUESTS, **labels, status="401") == 1
    assert value(page, f"{LATENCY}_count", **labels, status="200") == 2
    assert value(page, f"{LATENCY}_bucket", **labels, status="200", le="+Inf") == 2
    assert 0 < value(page, f"{LATENCY}_sum", **labels, status="200") < 10
    assert "12345" not in page  # the query is not a label


async def test_an_unmatched_path_is_counted_without_its_path(http: Http) -> None:
    assert (await http.get("/no/such/place-4f2a")).status_code == 404
    assert (await http.get("/another-9c1e")).status_code == 404

    page = await scrape(http)
    assert value(page, REQUESTS, route="<unmatched>", method="GET", status="404") == 2
    assert "place-4f2a" not in page
    assert "another-9c1e" not in page


async def test_an_invented_method_is_counted_as_other(http: Http) -> None:
    response = await http.request("BREW", "/calculator/add")
    assert response.status_code == 405

    page = await scrape(http)
    assert label_values(page, REQUESTS, "method") == {"OTHER"}
    assert "BREW" not in page


# --- tokens ----------------------------------------------------------------------------------


async def test_tokens_issued_and_refused_are_counted_by_reason(http: Http) -> None:
    await api_token(http)
    await api_token(http)
    form = {"grant_type": "client_credentials", "client_id": DEV_ID}
    wrong = await http.post("/token", data={**form, "client_secret": "wrong-secret-1"})
    assert wrong.status_code == 401
    unknown_grant = await http.post("/token", data={**form, "grant_type": "password"})
    assert unknown_grant.status_code == 400

    page = await scrape(http)
    assert value(page, "calcmcp_tokens_issued_total") == 2
    assert value(page, "calcmcp_tokens_refused_total", reason="InvalidClient") == 1
    assert value(page, "calcmcp_tokens_refused_total", reason="UnsupportedGrantType") == 1
    assert value(page, "calcmcp_security_events_total", event="token.issued", reason="") == 2


async def test_tokens_are_counted_even_when_the_audit_log_is_quiet(
    http: Http, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="calcmcp.audit")
    await api_token(http)

    assert [r for r in caplog.records if r.name == "calcmcp.audit"] == []
    assert value(await scrape(http), "calcmcp_tokens_issued_total") == 1


async def test_a_token_request_over_the_rate_limit_is_counted(tmp_path: Path) -> None:
    # a failure costs 5 tokens of the bucket: a burst of 5 allows one failure, then refuses
    async with serving(tmp_path, token_burst=5.0, token_rate=0.001) as http:
        form = {"grant_type": "client_credentials", "client_id": DEV_ID, "client_secret": "no"}
        assert (await http.post("/token", data=form)).status_code == 401
        limited = await http.post("/token", data=form)
        assert limited.status_code == 429
        page = await scrape(http)

    assert value(page, "calcmcp_rate_limit_rejections_total", limit="client_auth") == 1
    assert value(page, "calcmcp_tokens_refused_total", reason="RateLimited") == 1
    assert value(page, REQUESTS, route="/token", method="POST", status="429") == 1


async def test_a_stream_over_the_per_client_limit_is_counted(tmp_path: Path) -> None:
    async with serving(tmp_path, sse_max_streams_per_client=1) as http:
        token = await api_token(http)
        async with event_stream(http, token):
            headers = {**bearer(token), "Accept": "text/event-stream"}
            assert (await http.get("/events", headers=headers)).status_code == 429
        page = await scrape(http)

    assert value(page, "calcmcp_rate_limit_rejections_total", limit="streams_per_client") == 1


# --- streams and events ----------------------------------------------------------------------


async def test_open_event_streams_are_counted_up_then_down(http: Http) -> None:
    token = await api_token(http)
    assert value(await scrape(http), STREAMS, stream="events") == 0
    async with event_stream(http, token):
        assert value(await scrape(http), STREAMS, stream="events") == 1
        async with event_stream(http, token):
            assert value(await scrape(http), STREAMS, stream="events") == 2
        assert value(await scrape(http), STREAMS, stream="events") == 1

    page = await scrape(http)
    assert value(page, STREAMS, stream="events") == 0
    assert value(page, REQUESTS, route="/events", method="GET", status="200") == 2


async def test_events_published_and_delivered_to_each_subscriber_are_counted(http: Http) -> None:
    token = await api_token(http)
    async with event_stream(http, token) as one, event_stream(http, token) as two:
        event_id = await broadcast(http, token, "hello")
        for stream in (one, two):
            await stream.read_until(event_id.encode())
        page = await scrape(http)

    assert value(page, "calcmcp_events_published_total") == 1
    assert value(page, "calcmcp_events_delivered_total") == 2
    assert value(page, "calcmcp_events_replayed_total") == 0


async def test_a_calculation_is_published_too(http: Http) -> None:
    token = await api_token(http)
    assert (await http.post("/calculator/add?a=1&b=2", headers=bearer(token))).status_code == 200

    assert value(await scrape(http), "calcmcp_events_published_total") == 1


async def test_events_replayed_on_reconnect_are_counted(http: Http) -> None:
    token = await api_token(http)
    ids = [await broadcast(http, token, f"missed {n}") for n in range(3)]
    async with event_stream(http, token, {"Last-Event-ID": ids[0]}) as stream:
        await stream.read_until(ids[2].encode())
        assert ids[0].encode() not in stream.body

    page = await scrape(http)
    assert value(page, "calcmcp_events_replayed_total") == 2
    assert value(page, "calcmcp_events_delivered_total") == 0  # nobody was listening live


async def test_a_slow_subscriber_is_cut_off_and_its_events_dropped(tmp_path: Path) -> None:
    async with serving(tmp_path, subscriber_queue=2) as http:
        token = await api_token(http)
        stalled = Stalled(http.app)
        async with event_stream(http, token, app=stalled) as stream:
            for n in range(8):
                await broadcast(http, token, f"unread {n}")
            page = await scrape(http)
            stalled.release.set()
            await stream.read_until(b"event: end")
        closed = await scrape(http)

    assert value(page, "calcmcp_slow_subscribers_cut_off_total") == 1
    assert value(page, "calcmcp_events_dropped_total") >= 1
    assert value(page, "calcmcp_events_published_total") == 8
    assert b'"reason":"overflow"' in stream.body
    assert value(closed, STREAMS, stream="events") == 0


# --- MCP -------------------------------------------------------------------------------------


def mcp_calls(page: str) -> dict[tuple[str, str, str, str], float]:
    """Every MCP count: (method, tool, era, outcome) to its value."""
    found = {}
    for sample in samples(page):
        if sample.name == MCP_CALLS:
            labels = sample.labels
            key = (labels["method"], labels["tool"], labels["era"], labels["outcome"])
            found[key] = sample.value
    return found


async def test_mcp_calls_of_the_stateless_era_are_counted(http: Http) -> None:
    token = await fetch_token(http)
    add = {"name": "add", "arguments": {"a": 1, "b": 2}}
    assert_result(await post_modern(http, token, "tools/call", add))
    divide = {"name": "divide", "arguments": {"a": 1, "b": 0}}
    assert assert_result(await post_modern(http, token, "tools/call", divide))["isError"] is True
    unknown = await post_modern(http, token, "tools/call", {"name": "nope-7d1", "arguments": {}})
    assert_error(unknown, 400, -32602, 1)
    assert_result(await post_modern(http, token, "tools/list"))
    assert_error(await post_modern(http, token, "no/such-method-3f2"), 404, -32601, 1)

    page = await scrape(http)
    assert mcp_calls(page) == {
        ("tools/call", "add", "modern", "ok"): 1,
        ("tools/call", "divide", "modern", "tool_error"): 1,
        ("tools/call", "<unknown>", "modern", "error"): 1,
        ("tools/list", "", "modern", "ok"): 1,
        ("<unknown>", "", "modern", "error"): 1,
    }
    assert "nope-7d1" not in page
    assert "no/such-method-3f2" not in page


async def test_mcp_calls_of_a_2025_session_are_counted(http: Http) -> None:
    token = await fetch_token(http)
    session_id = await open_session(http, token, LATEST_HANDSHAKE)
    call = request("tools/call", {"name": "multiply", "arguments": {"a": 2, "b": 3}}, 2)
    assert_result(await post_legacy(http, token, session_id, LATEST_HANDSHAKE, call), 2)
    invented = request("no/such-method", None, 3)
    assert_error(
        await post_legacy(http, token, session_id, LATEST_HANDSHAKE, invented), 200, -32601, 3
    )

    page = await scrape(http)
    assert mcp_calls(page) == {
        ("initialize", "", "handshake", "ok"): 1,
        ("tools/call", "multiply", "handshake", "ok"): 1,
        ("<unknown>", "", "handshake", "error"): 1,
    }
    assert "no/such-method" not in page


async def test_a_2025_session_stream_is_counted_while_open(http: Http) -> None:
    token = await fetch_token(http)
    session_id = await open_session(http, token, LATEST_HANDSHAKE)
    headers = legacy_headers(token, session_id, LATEST_HANDSHAKE, accept="text/event-stream")
    async with asgi_stream(http.app, "GET", "/mcp", headers) as stream:
        await stream.read_until(b"\n\n")
        assert value(await scrape(http), STREAMS, stream="mcp") == 1

    assert value(await scrape(http), STREAMS, stream="mcp") == 0


async def test_mcp_calls_over_the_legacy_sse_transport_are_counted(http: Http) -> None:
    token = await fetch_token(http, resource=SSE_ENDPOINT)
    async with legacy_sse(http, token) as (stream, endpoint):
        assert value(await scrape(http), STREAMS, stream="mcp_sse") == 1
        init = request("initialize", {"protocolVersion": "2024-11-05", "capabilities": {}}, 1)
        divide = request("tools/call", {"name": "divide", "arguments": {"a": 1, "b": 0}}, 2)
        for body in (init, {"jsonrpc": "2.0", "method": "notifications/initialized"}, divide):
            response = await http.post(endpoint, json=body, headers=bearer(token))
            assert response.status_code == 202
        await stream.read_until(b'"id":2')

    page = await scrape(http)
    assert mcp_calls(page) == {
        ("initialize", "", "http+sse", "ok"): 1,
        ("tools/call", "divide", "http+sse", "tool_error"): 1,
    }
    assert value(page, STREAMS, stream="mcp_sse") == 0
    assert value(page, REQUESTS, route="/messages", method="POST", status="202") == 3


# --- configuration ---------------------------------------------------------------------------


def with_ops_client(**overrides: Any) -> dict[str, Any]:
    """Settings overrides adding a client that holds only the ``metrics`` scope."""
    ops = {"client_id": OPS_ID, "client_secret": OPS_SECRET, "scopes": ["metrics"]}
    return {"clients": json.dumps([*EXTRA_CLIENTS, ops]), **overrides}


async def test_a_metrics_scope_needs_a_token_with_it(tmp_path: Path) -> None:
    async with serving(tmp_path, **with_ops_client(metrics_scope="metrics")) as http:
        missing = await http.get("/metrics")
        wrong = await http.get("/metrics", headers=bearer(await api_token(http)))
        other = await fetch_token(http, SSE_ONLY_ID, SSE_ONLY_SECRET, resource=None)
        also_wrong = await http.get("/metrics", headers=bearer(other))
        ops = await fetch_token(http, OPS_ID, OPS_SECRET, resource=None, scope="metrics")
        page = await scrape(http, **bearer(ops))

    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer ")
    assert "calcmcp_" not in missing.text
    for refused in (wrong, also_wrong):
        assert refused.status_code == 403
        assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
        assert 'scope="metrics"' in refused.headers["www-authenticate"]
        assert "calcmcp_" not in refused.text
    assert value(page, "calcmcp_tokens_issued_total") == 3


async def test_the_metrics_scope_may_be_an_existing_one(tmp_path: Path) -> None:
    async with serving(tmp_path, metrics_scope="calculator") as http:
        calculator = await fetch_token(http, resource=None, scope="calculator")
        sse = await fetch_token(http, resource=None, scope="sse")
        assert (await http.get("/metrics", headers=bearer(sse))).status_code == 403
        assert "calcmcp_http_requests" in await scrape(http, **bearer(calculator))


async def test_without_metrics_there_is_no_metrics_route(tmp_path: Path) -> None:
    async with serving(tmp_path, metrics=False) as http:
        token = await api_token(http)
        calculated = await http.post("/calculator/add?a=1&b=2", headers=bearer(token))
        missing = await http.get("/metrics")

    assert calculated.status_code == 200  # the service works without counting
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
