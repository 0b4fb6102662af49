"""Hypothesis against ``POST /mcp``: whatever arrives, never a 5xx, and always a JSON-RPC answer.

Arbitrary JSON values, JSON-RPC-shaped messages with arbitrary parts, and arbitrary bytes, sent
with valid authentication: without version headers, with 2026-07-28 routing headers, and within
a 2025-03-26 session (the era that still takes batches). Every answer is either ``202`` with an
empty body or a JSON-RPC response object (or, for a batch, a list of them).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from dependency_injector import providers
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from src.bootstrap import Container, Settings, build_container, create_app
from tests.adapters.http.conftest import DEV_ID, DEV_SECRET, PUBLIC_URL, TIMEOUT, FixedClock

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
BOTH = "application/json, text/event-stream"
# the loaded profile's budget (ci: 200, dev: 50), capped: each example is a full request
BUDGET = settings(
    max_examples=min(100, settings().max_examples),
    deadline=None,
    # the app is built once per test and shared by its examples on purpose: requests are
    # independent, and building an app per example would cost most of the budget
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
JSON = st.recursive(
    LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=16,
)
METHODS = st.sampled_from(
    [
        "server/discover",
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "resources/subscribe",
        "logging/setLevel",
        "notifications/initialized",
        "notifications/cancelled",
    ]
) | st.text(max_size=12)
GOOD_META = st.just(
    {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
)
META = (
    GOOD_META
    | st.dictionaries(
        st.sampled_from(
            [
                "io.modelcontextprotocol/protocolVersion",
                "io.modelcontextprotocol/clientCapabilities",
                "io.modelcontextprotocol/clientInfo",
            ]
        ),
        JSON | st.sampled_from([MODERN, "2025-11-25", "1900-01-01"]),
    )
    | JSON
)
ARGUMENTS = st.dictionaries(
    st.sampled_from(["a", "b", "message", "c"]),
    LEAVES | st.sampled_from(["0.1", "1e999", "-0", "NaN", "", "9" * 60]),
    max_size=4,
)
PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "_meta": META,
        "name": st.sampled_from(["add", "subtract", "multiply", "divide", "broadcast"]) | LEAVES,
        "arguments": ARGUMENTS | JSON,
        "uri": st.sampled_from(["calc://events/recent", "calc://nope"]) | LEAVES,
        "protocolVersion": st.sampled_from(["2025-11-25", "2025-03-26", "2024-11-05"]) | LEAVES,
        "capabilities": JSON,
        "level": st.sampled_from(["debug", "loud"]) | LEAVES,
    },
)
IDS = st.integers() | st.text(max_size=6) | st.none() | st.floats(allow_nan=False) | st.booleans()
MESSAGES = st.fixed_dictionaries(
    {"jsonrpc": st.just("2.0") | LEAVES},
    optional={"id": IDS, "method": METHODS | LEAVES, "params": PARAMS | JSON, "result": JSON},
)
BODIES = JSON | MESSAGES | st.lists(MESSAGES, max_size=3)


@pytest.fixture
def container(settings: Settings, clock: FixedClock) -> Container:
    """The real container with a fixed clock."""
    built = build_container(settings)
    built.clock.override(providers.Object(clock))
    return built


@pytest.fixture
async def http(container: Container) -> AsyncIterator[AsyncTestClient[Any]]:
    """The app, reached at its public URL (an allowed MCP host)."""
    app = create_app(container)
    async with AsyncTestClient(
        app=app, base_url=PUBLIC_URL, raise_server_exceptions=False, timeout=TIMEOUT
    ) as test:
        yield test


@pytest.fixture
async def token(http: AsyncTestClient[Any]) -> str:
    """A token of the development client, both scopes, for ``/mcp``."""
    form = {
        "grant_type": "client_credentials",
        "client_id": DEV_ID,
        "client_secret": DEV_SECRET,
        "resource": f"{PUBLIC_URL}/mcp",
    }
    response = await http.post("/token", data=form)
    assert response.status_code == 200, response.text
    value: str = response.json()["access_token"]
    return value


@pytest.fixture
async def session_id(http: AsyncTestClient[Any], token: str) -> str:
    """A 2025-03-26 session of the development client."""
    body = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": "2025-03-26", "capabilities": {}},
    }
    response = await http.post(
        "/mcp", json=body, headers={"Authorization": f"Bearer {token}", "Accept": BOTH}
    )
    assert response.status_code == 200, response.text
    value: str = response.headers["mcp-session-id"]
    return value


def header_value(value: Any) -> str:
    """A header value as an SDK client writes it: visible ASCII, else the base64 sentinel."""
    text = value if isinstance(value, str) else json.dumps(value)
    if text and all(0x20 < ord(c) < 0x7F for c in text):
        return text
    return "=?base64?" + base64.b64encode(text.encode("utf-8", "surrogatepass")).decode() + "?="


def modern_headers(body: Any) -> dict[str, str]:
    """2026-07-28 routing headers derived from the body, as a client would send them."""
    message = body if isinstance(body, dict) else {}
    raw_params = message.get("params")
    params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
    headers = {
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": header_value(message.get("method", "")),
    }
    named = params.get("name", params.get("uri"))
    if named is not None:
        headers["Mcp-Name"] = header_value(named)
    return headers


def assert_json_rpc(answer: Any) -> None:
    """One JSON-RPC response object."""
    assert isinstance(answer, dict), answer
    assert answer.get("jsonrpc") == "2.0", answer
    assert "id" in answer, answer
    assert isinstance(answer["id"], int | str | None), answer
    assert ("result" in answer) != ("error" in answer), answer
    if "error" in answer:
        assert isinstance(answer["error"]["code"], int), answer
        assert isinstance(answer["error"]["message"], str), answer


async def post(http: AsyncTestClient[Any], content: bytes, headers: dict[str, str]) -> None:
    """Send ``content`` and check the answer's shape."""
    response = await http.post("/mcp", content=content, headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code == 202:
        assert response.content == b""
        return
    assert response.headers["content-type"].startswith("application/json"), response.text
    answer = response.json()
    for one in answer if isinstance(answer, list) else [answer]:
        assert_json_rpc(one)


def encode(value: Any) -> bytes:
    return json.dumps(value).encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("routing", ["none", "2026-07-28"])
@BUDGET
@given(body=BODIES)
async def test_any_json_gets_a_json_rpc_answer_and_never_a_5xx(
    http: AsyncTestClient[Any], token: str, routing: str, body: Any
) -> None:
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": BOTH,
        "Content-Type": "application/json",
    }
    if routing != "none":
        headers.update(modern_headers(body))
    await post(http, encode(body), headers)


@BUDGET
@given(body=BODIES)
async def test_any_json_in_a_2025_03_26_session_gets_a_json_rpc_answer(
    http: AsyncTestClient[Any], token: str, session_id: str, body: Any
) -> None:
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": BOTH,
        "Content-Type": "application/json",
        "Mcp-Session-Id": session_id,
    }
    await post(http, encode(body), headers)


@pytest.mark.parametrize("routing", ["none", "2026-07-28"])
@BUDGET
@given(content=st.binary(max_size=256))
@example(content=b'"\x80"')  # invalid UTF-8 inside a JSON string: once a 500
@example(content=b'{"jsonrpc":"2.0","id":1,"method":"p\xffng"}')
async def test_any_bytes_get_a_json_rpc_answer_and_never_a_5xx(
    http: AsyncTestClient[Any], token: str, routing: str, content: bytes
) -> None:
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": BOTH,
        "Content-Type": "application/json",
    }
    if routing != "none":
        headers.update({"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list"})
    await post(http, content, headers)
