"""MCP over HTTP, in process: every protocol edge case, with its status, headers and error code.

The app comes from the real factory (``create_app``) with a fixed clock, but with the real id
source, so session ids are what production hands out. Finite answers go through Litestar's
``AsyncTestClient``; endless streams (the session GET stream, ``GET /sse``) are driven by a small
ASGI harness (:func:`asgi_stream`) that reads what was sent so far and then disconnects.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from dependency_injector import providers
from litestar.testing import AsyncTestClient

from src.bootstrap import Container, Settings, build_container, create_app
from tests.adapters.http.conftest import (
    CALC_ONLY_ID,
    CALC_ONLY_SECRET,
    DEV_ID,
    DEV_SECRET,
    ODD_ID,
    ODD_SECRET,
    PUBLIC_URL,
    SSE_ONLY_ID,
    SSE_ONLY_SECRET,
    TIMEOUT,
    FixedClock,
    bearer,
    make_container,
    make_settings,
)

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
LATEST_HANDSHAKE = "2025-11-25"
SUPPORTED = [MODERN, "2025-11-25", "2025-06-18", "2025-03-26"]
ENDPOINT = f"{PUBLIC_URL}/mcp"
SSE_ENDPOINT = f"{PUBLIC_URL}/sse"
WELL_KNOWN = f"{PUBLIC_URL}/.well-known/oauth-protected-resource"
EXTENSION = "io.modelcontextprotocol/oauth-client-credentials"
SERVER_INFO = "io.modelcontextprotocol/serverInfo"
BOTH = "application/json, text/event-stream"
EVENTS_URI = "calc://events/recent"
CALCULATOR_TOOLS = ["add", "subtract", "multiply", "divide"]
ALL_TOOLS = [*CALCULATOR_TOOLS, "broadcast"]
VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")

Http = AsyncTestClient[Any]
Token = Callable[..., Awaitable[str]]


# --- the app under test ----------------------------------------------------------------------


@pytest.fixture
def container(settings: Settings, clock: FixedClock) -> Container:
    """The real container with a fixed clock; ids (session ids among them) stay random."""
    built = build_container(settings)
    built.clock.override(providers.Object(clock))
    return built


@asynccontextmanager
async def running(container: Container) -> AsyncIterator[Http]:
    """A test client for a fresh app, reaching it as ``calc.test`` (an allowed MCP host)."""
    app = create_app(container)
    async with AsyncTestClient(
        app=app, base_url=PUBLIC_URL, raise_server_exceptions=False, timeout=TIMEOUT
    ) as test:
        yield test


@asynccontextmanager
async def serving(tmp_path: Path, **overrides: Any) -> AsyncIterator[Http]:
    """:func:`running` for an app of the test's own: the test settings with ``overrides``,
    its data directory ``tmp_path / "data"``."""
    settings = make_settings(tmp_path / "data", **overrides)
    async with running(make_container(settings, FixedClock())) as client:
        yield client


@pytest.fixture
async def http(container: Container) -> AsyncIterator[Http]:
    """The app, reached at its public URL."""
    async with running(container) as test:
        yield test


async def fetch_token(
    http: Http,
    client_id: str = DEV_ID,
    secret: str = DEV_SECRET,
    *,
    resource: str | None = ENDPOINT,
    scope: str | None = None,
) -> str:
    """An access token from ``/token`` (for the Streamable HTTP endpoint unless told)."""
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    if resource is not None:
        form["resource"] = resource
    if scope is not None:
        form["scope"] = scope
    response = await http.post("/token", data=form)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
async def token(http: Http) -> str:
    """A token of the development client (both scopes) for ``/mcp``."""
    return await fetch_token(http)


@pytest.fixture
async def sse_token(http: Http) -> str:
    """A token of the development client (both scopes) for the legacy ``/sse`` transport."""
    return await fetch_token(http, resource=SSE_ENDPOINT)


# --- message helpers -------------------------------------------------------------------------


def meta(
    version: str | None = MODERN, capabilities: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A 2026-07-28 request ``_meta`` (a key is left out when its value is ``None``)."""
    fields: dict[str, Any] = {"io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"}}
    if version is not None:
        fields["io.modelcontextprotocol/protocolVersion"] = version
    if capabilities is not None:
        fields["io.modelcontextprotocol/clientCapabilities"] = capabilities
    return fields


def modern_request(
    method: str, params: dict[str, Any] | None = None, *, request_id: Any = 1, version: str = MODERN
) -> dict[str, Any]:
    """A 2026-07-28 request body."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": method,
        "params": {**(params or {}), "_meta": meta(version, {})},
    }


def modern_headers(token: str, body: dict[str, Any], version: str | None = None) -> dict[str, str]:
    """The headers a correct 2026-07-28 client sends for ``body``."""
    params = body.get("params", {})
    headers = {
        **bearer(token),
        "Accept": BOTH,
        "Content-Type": "application/json",
        "MCP-Protocol-Version": version
        or params["_meta"]["io.modelcontextprotocol/protocolVersion"],
        "Mcp-Method": body["method"],
    }
    if body["method"] in ("tools/call", "resources/read"):
        headers["Mcp-Name"] = params.get("name") or params["uri"]
    return headers


async def post_modern(
    http: Http,
    token: str,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    request_id: Any = 1,
    headers: Mapping[str, str | None] | None = None,
) -> Any:
    """POST a 2026-07-28 request with correct headers, changed by ``headers`` (``None``: drop)."""
    body = modern_request(method, params, request_id=request_id)
    sent: dict[str, str | None] = {**modern_headers(token, body), **(headers or {})}
    final = {name: value for name, value in sent.items() if value is not None}
    return await http.post("/mcp", content=json.dumps(body), headers=final)


def assert_error(response: Any, status: int, code: int, request_id: Any = None) -> dict[str, Any]:
    """A JSON-RPC error answered with ``status``; returns the error object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["jsonrpc"] == "2.0"
    assert "result" not in body
    assert body["id"] == request_id
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def assert_result(response: Any, request_id: Any = 1) -> dict[str, Any]:
    """A JSON-RPC result answered 200 as JSON; returns the result."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["jsonrpc"] == "2.0"
    assert body["id"] == request_id
    assert type(body["id"]) is type(request_id)
    assert "error" not in body, body
    result: dict[str, Any] = body["result"]
    return result


async def open_session(
    http: Http, token: str, version: str = LATEST_HANDSHAKE, *, accept: str = BOTH
) -> str:
    """``initialize`` at ``version`` and ``notifications/initialized``; the session id."""
    response = await http.post(
        "/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": version,
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        headers={**bearer(token), "Accept": accept},
    )
    assert response.status_code == 200, response.text
    session_id: str = response.headers["mcp-session-id"]
    initialized = await post_legacy(
        http, token, session_id, version, {"jsonrpc": "2.0", "method": "notifications/initialized"}
    )
    assert initialized.status_code == 202, initialized.text
    return session_id


def legacy_headers(
    token: str, session_id: str | None, version: str | None, accept: str = BOTH
) -> dict[str, str]:
    """The headers a 2025-era client sends within a session."""
    headers = {**bearer(token), "Accept": accept, "Content-Type": "application/json"}
    if session_id is not None:
        headers["Mcp-Session-Id"] = session_id
    if version is not None and version != "2025-03-26":  # 2025-03-26 had no version header
        headers["MCP-Protocol-Version"] = version
    return headers


async def post_legacy(
    http: Http,
    token: str,
    session_id: str | None,
    version: str | None,
    body: Any,
    *,
    accept: str = BOTH,
) -> Any:
    """POST a message within a 2025-era session."""
    headers = legacy_headers(token, session_id, version, accept)
    return await http.post("/mcp", content=json.dumps(body), headers=headers)


def request(
    method: str, params: dict[str, Any] | None = None, request_id: Any = 1
) -> dict[str, Any]:
    """A 2025-era request body (no ``_meta``)."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return body


# --- Server-Sent Events -----------------------------------------------------------------------


def sse_blocks(text: str) -> list[list[tuple[str, str]]]:
    """The events of a finite SSE body, as (field, value) lists (comments left out)."""
    blocks = []
    for raw in re.split(r"\r\n\r\n|\n\n|\r\r", text):
        fields = []
        for line in re.split(r"\r\n|\n|\r", raw):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields.append((name, value.removeprefix(" ")))
        if fields:
            blocks.append(fields)
    return blocks


def field(block: list[tuple[str, str]], name: str) -> str | None:
    """The value of ``name`` in an event (``None`` if absent)."""
    values = [value for key, value in block if key == name]
    assert len(values) <= 1, block
    return values[0] if values else None


class Stream:
    """What an ASGI response sent so far."""

    def __init__(self, messages: anyio.abc.ObjectReceiveStream[dict[str, Any]]) -> None:
        self._messages = messages
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""

    async def start(self) -> None:
        with anyio.fail_after(5):
            message = await self._messages.receive()
        assert message["type"] == "http.response.start", message
        self.status = message["status"]
        self.headers = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}

    async def read_until(self, marker: bytes, timeout: float = 5.0) -> bytes:
        """The body up to and including ``marker`` (it must arrive within ``timeout``)."""
        with anyio.fail_after(timeout):
            while marker not in self.body:
                message = await self._messages.receive()
                assert message["type"] == "http.response.body"
                self.body += message.get("body", b"")
                assert message.get("more_body", False) or marker in self.body, self.body
        return self.body

    def events(self) -> list[list[tuple[str, str]]]:
        """The complete events received so far."""
        complete = self.body[: self.body.rfind(b"\n\n") + 2] if b"\n\n" in self.body else b""
        return sse_blocks(complete.decode())


@asynccontextmanager
async def asgi_stream(
    app: Any, method: str, url: str, headers: dict[str, str], *, root_path: str = ""
) -> AsyncIterator[Stream]:
    """Call ``app`` directly for a response that may never end; disconnect on leaving."""
    path, _, query = url.partition("?")
    sender, receiver = anyio.create_memory_object_stream[dict[str, Any]](math.inf)
    disconnected = anyio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await disconnected.wait()
        return {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": query.encode(),
        "headers": [
            (k.lower().encode(), v.encode()) for k, v in {"host": "calc.test", **headers}.items()
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("calc.test", 80),
    }
    with anyio.fail_after(15):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(app, scope, receive, sender.send)
            stream = Stream(receiver)
            try:
                await stream.start()
                yield stream
            finally:
                disconnected.set()


# --- 2026-07-28 ------------------------------------------------------------------------------


async def test_discover_describes_versions_capabilities_and_caching(http: Http, token: str) -> None:
    response = await post_modern(http, token, "server/discover", request_id="discover-1")
    result = assert_result(response, "discover-1")
    assert result["supportedVersions"] == SUPPORTED
    assert result["capabilities"]["extensions"] == {EXTENSION: {}}
    assert "tools" in result["capabilities"]
    assert "logging" not in result["capabilities"]  # logging/setLevel is gone at 2026-07-28
    assert result["resultType"] == "complete"
    assert isinstance(result["ttlMs"], int)
    assert result["ttlMs"] >= 0
    assert result["cacheScope"] in ("public", "private")
    assert result["_meta"][SERVER_INFO]["name"] == "calcmcp"
    assert result["_meta"][SERVER_INFO]["version"]


async def test_a_request_without_client_capabilities_is_invalid_params(
    http: Http, token: str
) -> None:
    body = modern_request("tools/list", request_id=7)
    del body["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"]
    response = await http.post(
        "/mcp", content=json.dumps(body), headers=modern_headers(token, body)
    )
    assert_error(response, 400, -32602, 7)


async def test_a_request_without_a_protocol_version_or_its_header_is_invalid_params(
    http: Http, token: str
) -> None:
    body = modern_request("tools/list", request_id=7)
    del body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"]
    headers = modern_headers(token, body, version="-")
    del headers["MCP-Protocol-Version"]
    response = await http.post("/mcp", content=json.dumps(body), headers=headers)
    assert_error(response, 400, -32602, 7)


@pytest.mark.parametrize("shape", ["no protocolVersion in _meta", "no _meta at all"])
async def test_a_request_missing_its_meta_version_is_invalid_params_despite_the_header(
    http: Http, token: str, shape: str
) -> None:
    body = modern_request("tools/list", request_id=7)
    headers = modern_headers(token, body)
    if shape == "no _meta at all":
        del body["params"]["_meta"]
    else:
        del body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"]
    response = await http.post("/mcp", content=json.dumps(body), headers=headers)
    assert_error(response, 400, -32602, 7)


def _b64(text: str) -> str:
    return "=?base64?" + base64.b64encode(text.encode()).decode() + "?="


HEADER_MISMATCHES = {
    "version header missing": ("tools/list", {"MCP-Protocol-Version": None}),
    "version header differs": ("tools/list", {"MCP-Protocol-Version": "2099-01-01"}),
    "method header missing": ("tools/list", {"Mcp-Method": None}),
    "method header differs": ("tools/list", {"Mcp-Method": "resources/list"}),
    "method header in another case": ("tools/list", {"Mcp-Method": "TOOLS/LIST"}),
    "name header missing": ("tools/call", {"Mcp-Name": None}),
    "name header differs": ("tools/call", {"Mcp-Name": "subtract"}),
    "name header base64 of another name": ("tools/call", {"Mcp-Name": _b64("subtract")}),
    "name header bad base64": ("tools/call", {"Mcp-Name": "=?base64?!!!?="}),
    "resource name header differs": ("resources/read", {"Mcp-Name": "calc://other"}),
}


@pytest.mark.parametrize(("method", "headers"), HEADER_MISMATCHES.values(), ids=HEADER_MISMATCHES)
async def test_routing_headers_missing_or_disagreeing_with_the_body_are_a_header_mismatch(
    http: Http, token: str, method: str, headers: dict[str, str | None]
) -> None:
    by_method: dict[str, dict[str, Any]] = {
        "tools/call": {"name": "add", "arguments": {"a": 1, "b": 2}},
        "resources/read": {"uri": EVENTS_URI},
    }
    params = by_method.get(method)
    response = await post_modern(http, token, method, params, request_id=3, headers=headers)
    assert_error(response, 400, -32020, 3)


@pytest.mark.parametrize(
    ("method", "params", "name"),
    [
        ("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}, _b64("add")),
        ("resources/read", {"uri": EVENTS_URI}, _b64(EVENTS_URI)),
    ],
    ids=["tool", "resource"],
)
async def test_a_base64_encoded_name_header_matches_its_decoded_value(
    http: Http, token: str, method: str, params: dict[str, Any], name: str
) -> None:
    response = await post_modern(http, token, method, params, headers={"Mcp-Name": name})
    assert assert_result(response)["resultType"] == "complete"


async def test_header_names_are_case_insensitive(http: Http, token: str) -> None:
    body = modern_request("tools/list")
    headers = {name.lower(): value for name, value in modern_headers(token, body).items()}
    response = await http.post("/mcp", content=json.dumps(body), headers=headers)
    assert [tool["name"] for tool in assert_result(response)["tools"]] == ALL_TOOLS


async def test_an_unsupported_version_is_refused_naming_the_supported_ones(
    http: Http, token: str
) -> None:
    body = modern_request("tools/list", request_id=9, version="1900-01-01")
    response = await http.post(
        "/mcp", content=json.dumps(body), headers=modern_headers(token, body)
    )
    error = assert_error(response, 400, -32022, 9)
    assert error["data"] == {"supported": SUPPORTED, "requested": "1900-01-01"}


@pytest.mark.parametrize("method", ["no/such-method", "ping", "logging/setLevel", "initialized"])
async def test_an_unknown_method_is_404_method_not_found(
    http: Http, token: str, method: str
) -> None:
    params = {"level": "info"} if method == "logging/setLevel" else None
    response = await post_modern(http, token, method, params, request_id=4)
    assert_error(response, 404, -32601, 4)


@pytest.mark.parametrize(
    ("method", "params", "cacheable"),
    [
        ("tools/list", None, True),
        ("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}, False),
        ("resources/list", None, True),
        ("resources/read", {"uri": EVENTS_URI}, True),
        ("resources/templates/list", None, True),
    ],
)
async def test_every_result_has_a_result_type_and_server_info(
    http: Http, token: str, method: str, params: dict[str, Any] | None, cacheable: bool
) -> None:
    result = assert_result(await post_modern(http, token, method, params))
    assert result["resultType"] == "complete"
    assert result["_meta"][SERVER_INFO]["name"] == "calcmcp"
    if cacheable:
        assert isinstance(result["ttlMs"], int)
        assert result["ttlMs"] >= 0
        assert result["cacheScope"] == "private"  # what is listed depends on the caller's scopes


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_get_and_delete_without_a_session_are_405(
    http: Http, token: str, method: str
) -> None:
    response = await http.request(
        method, "/mcp", headers={**bearer(token), "Accept": "text/event-stream"}
    )
    assert response.headers["allow"] == "POST"
    assert_error(response, 405, -32600)


async def test_a_notification_is_accepted_with_an_empty_body(http: Http, token: str) -> None:
    body = {
        "jsonrpc": "2.0",
        "method": "notifications/cancelled",
        "params": {"requestId": 1, "_meta": meta(MODERN, {})},
    }
    headers = modern_headers(token, body)
    response = await http.post("/mcp", content=json.dumps(body), headers=headers)
    assert response.status_code == 202
    assert response.content == b""
    assert "content-type" not in response.headers


async def test_the_request_id_is_echoed_with_its_json_type(http: Http, token: str) -> None:
    for request_id in (0, -5, 2**53, "1", "", "é"):
        response = await post_modern(http, token, "tools/list", request_id=request_id)
        assert_result(response, request_id)


# --- 2025 eras: initialize, sessions --------------------------------------------------------


@pytest.mark.parametrize("version", ["2025-11-25", "2025-06-18", "2025-03-26"])
async def test_initialize_answers_a_known_version_with_itself_and_opens_a_session(
    http: Http, token: str, version: str
) -> None:
    body = request(
        "initialize",
        {
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
        request_id="init",
    )
    response = await http.post("/mcp", json=body, headers={**bearer(token), "Accept": BOTH})
    result = assert_result(response, "init")
    assert result["protocolVersion"] == version
    assert result["serverInfo"]["name"] == "calcmcp"
    assert result["capabilities"]["tools"] == {"listChanged": False}
    assert "resultType" not in result
    session_id = response.headers["mcp-session-id"]
    assert VISIBLE_ASCII.fullmatch(session_id)
    assert len(session_id) >= 16  # at least 96 random bits, whatever the encoding
    again = await http.post("/mcp", json=body, headers={**bearer(token), "Accept": BOTH})
    assert again.headers["mcp-session-id"] != session_id


@pytest.mark.parametrize("offered", ["1999-01-01", MODERN, "2025-11-26", "latest"])
async def test_initialize_answers_an_unknown_version_with_the_latest_handshake_version(
    http: Http, token: str, offered: str
) -> None:
    body = request("initialize", {"protocolVersion": offered, "capabilities": {}})
    response = await http.post("/mcp", json=body, headers={**bearer(token), "Accept": BOTH})
    assert assert_result(response)["protocolVersion"] == LATEST_HANDSHAKE


async def test_initialize_without_a_protocol_version_is_invalid_params(
    http: Http, token: str
) -> None:
    body = request("initialize", {"capabilities": {}}, request_id=2)
    response = await http.post("/mcp", json=body, headers={**bearer(token), "Accept": BOTH})
    assert_error(response, 400, -32602, 2)
    assert "mcp-session-id" not in response.headers


@pytest.mark.parametrize("version", ["2025-11-25", "2025-06-18", None])
async def test_a_request_without_the_session_header_is_400(
    http: Http, token: str, version: str | None
) -> None:
    response = await post_legacy(http, token, None, version, request("tools/list"))
    assert_error(response, 400, -32600)


async def test_an_unknown_session_is_404(http: Http, token: str) -> None:
    response = await post_legacy(http, token, "no-such-session", LATEST_HANDSHAKE, request("ping"))
    assert_error(response, 404, -32600)


async def test_a_session_of_another_client_is_404_and_left_alone(http: Http, token: str) -> None:
    session_id = await open_session(http, token)
    other = await fetch_token(http, ODD_ID, ODD_SECRET)
    post = await post_legacy(http, other, session_id, LATEST_HANDSHAKE, request("ping"))
    assert_error(post, 404, -32600)
    headers = {**legacy_headers(other, session_id, LATEST_HANDSHAKE), "Accept": "text/event-stream"}
    assert_error(await http.get("/mcp", headers=headers), 404, -32600)
    assert_error(await http.delete("/mcp", headers=headers), 404, -32600)
    owner = await post_legacy(http, token, session_id, LATEST_HANDSHAKE, request("ping"))
    assert assert_result(owner) == {}


async def test_delete_ends_the_session(http: Http, token: str) -> None:
    session_id = await open_session(http, token)
    headers = legacy_headers(token, session_id, LATEST_HANDSHAKE)
    response = await http.delete("/mcp", headers=headers)
    assert response.status_code in (200, 204)
    after = await post_legacy(http, token, session_id, LATEST_HANDSHAKE, request("ping"))
    assert_error(after, 404, -32600)
    assert_error(await http.delete("/mcp", headers=headers), 404, -32600)
    stream_headers = {**headers, "Accept": "text/event-stream"}
    assert_error(await http.get("/mcp", headers=stream_headers), 404, -32600)


async def test_the_initialized_notification_is_accepted_with_an_empty_body(
    http: Http, token: str
) -> None:
    session_id = await open_session(http, token)
    body = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    response = await post_legacy(http, token, session_id, LATEST_HANDSHAKE, body)
    assert response.status_code == 202
    assert response.content == b""


@pytest.mark.parametrize("version", ["2025-11-25", "2025-06-18", "2025-03-26"])
async def test_ping_and_tools_work_in_every_handshake_era(
    http: Http, token: str, version: str
) -> None:
    session_id = await open_session(http, token, version)
    ping = await post_legacy(http, token, session_id, version, request("ping", request_id=5))
    assert assert_result(ping, 5) == {}
    tools = await post_legacy(http, token, session_id, version, request("tools/list"))
    listed = assert_result(tools)
    assert [tool["name"] for tool in listed["tools"]] == ALL_TOOLS
    assert "ttlMs" not in listed
    assert "resultType" not in listed


async def test_server_discover_is_not_a_handshake_era_method(http: Http, token: str) -> None:
    session_id = await open_session(http, token)
    response = await post_legacy(
        http, token, session_id, LATEST_HANDSHAKE, request("server/discover")
    )
    assert_error(response, 200, -32601, 1)


@pytest.mark.parametrize(
    ("level", "code"), [("debug", None), ("emergency", None), ("loud", -32602), (3, -32602)]
)
async def test_logging_set_level_accepts_only_the_syslog_levels(
    http: Http, token: str, level: Any, code: int | None
) -> None:
    session_id = await open_session(http, token)
    body = request("logging/setLevel", {"level": level}, request_id=6)
    response = await post_legacy(http, token, session_id, LATEST_HANDSHAKE, body)
    if code is None:
        assert assert_result(response, 6) == {}
    else:
        assert_error(response, 200, code, 6)


async def test_a_version_header_other_than_the_sessions_is_400(http: Http, token: str) -> None:
    session_id = await open_session(http, token, "2025-06-18")
    for header in ("2025-11-25", "1999-01-01", MODERN):
        response = await post_legacy(http, token, session_id, header, request("ping"))
        assert_error(response, 400, -32600)
    fine = await post_legacy(http, token, session_id, "2025-06-18", request("ping"))
    assert assert_result(fine) == {}


# --- 2025 eras: JSON or SSE answers, the GET stream, resumption -----------------------------


async def test_a_post_is_answered_as_json_when_json_is_acceptable(http: Http, token: str) -> None:
    session_id = await open_session(http, token)
    for accept in (BOTH, "application/json", "*/*", "application/*"):
        response = await post_legacy(
            http, token, session_id, LATEST_HANDSHAKE, request("ping"), accept=accept
        )
        assert response.headers["content-type"] == "application/json"
        assert assert_result(response) == {}


async def test_a_post_accepting_neither_json_nor_sse_is_406(http: Http, token: str) -> None:
    session_id = await open_session(http, token)
    response = await post_legacy(
        http, token, session_id, LATEST_HANDSHAKE, request("ping"), accept="text/html"
    )
    assert_error(response, 406, -32600)


async def test_a_2025_11_25_sse_answer_starts_with_a_priming_event(http: Http, token: str) -> None:
    session_id = await open_session(http, token)
    response = await post_legacy(
        http,
        token,
        session_id,
        LATEST_HANDSHAKE,
        request("ping", request_id=8),
        accept="text/event-stream",
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    prime, answer = sse_blocks(response.text)
    assert field(prime, "id")
    assert field(prime, "data") == ""
    assert field(prime, "retry") == "3000"
    assert field(answer, "id")
    assert field(answer, "id") != field(prime, "id")
    assert json.loads(field(answer, "data") or "") == {"jsonrpc": "2.0", "id": 8, "result": {}}


@pytest.mark.parametrize("version", ["2025-06-18", "2025-03-26"])
async def test_an_older_sse_answer_has_no_priming_event(
    http: Http, token: str, version: str
) -> None:
    session_id = await open_session(http, token, version)
    response = await post_legacy(
        http, token, session_id, version, request("ping"), accept="text/event-stream"
    )
    assert response.headers["content-type"] == "text/event-stream"
    (answer,) = sse_blocks(response.text)
    assert json.loads(field(answer, "data") or "") == {"jsonrpc": "2.0", "id": 1, "result": {}}


async def test_initialize_may_be_answered_as_sse(http: Http, token: str) -> None:
    body = request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {}})
    response = await http.post(
        "/mcp", json=body, headers={**bearer(token), "Accept": "text/event-stream"}
    )
    assert response.headers["content-type"] == "text/event-stream"
    assert VISIBLE_ASCII.fullmatch(response.headers["mcp-session-id"])
    (answer,) = sse_blocks(response.text)
    assert json.loads(field(answer, "data") or "")["result"]["protocolVersion"] == "2025-06-18"


async def test_the_get_stream_needs_event_stream_in_accept(http: Http, token: str) -> None:
    session_id = await open_session(http, token)
    headers = legacy_headers(token, session_id, LATEST_HANDSHAKE, accept="application/json")
    assert_error(await http.get("/mcp", headers=headers), 406, -32600)


async def test_the_get_stream_opens_with_a_retry_field(http: Http, token: str) -> None:
    session_id = await open_session(http, token)
    headers = legacy_headers(token, session_id, LATEST_HANDSHAKE, accept="text/event-stream")
    async with asgi_stream(http.app, "GET", "/mcp", headers) as stream:
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream"
        assert await stream.read_until(b"\n\n") == b"retry: 3000\n\n"


async def test_the_get_stream_is_405_for_a_client_without_the_sse_scope(http: Http) -> None:
    token = await fetch_token(http, CALC_ONLY_ID, CALC_ONLY_SECRET)
    session_id = await open_session(http, token)
    headers = legacy_headers(token, session_id, LATEST_HANDSHAKE, accept="text/event-stream")
    response = await http.get("/mcp", headers=headers)
    assert response.headers["allow"] == "POST"
    assert_error(response, 405, -32600)


async def test_a_subscribed_session_is_told_of_new_events_on_its_get_stream(
    http: Http, token: str
) -> None:
    session_id = await open_session(http, token)
    subscribe = request("resources/subscribe", {"uri": EVENTS_URI}, request_id=2)
    assert (
        assert_result(await post_legacy(http, token, session_id, LATEST_HANDSHAKE, subscribe), 2)
        == {}
    )
    headers = legacy_headers(token, session_id, LATEST_HANDSHAKE, accept="text/event-stream")
    async with asgi_stream(http.app, "GET", "/mcp", headers) as stream:
        await stream.read_until(b"retry: 3000\n\n")
        shout = request("tools/call", {"name": "broadcast", "arguments": {"message": "hi"}}, 3)
        assert_result(await post_legacy(http, token, session_id, LATEST_HANDSHAKE, shout), 3)
        await stream.read_until(b"notifications/resources/updated")
        await stream.read_until(b"\n\n")
        (update,) = [block for block in stream.events() if field(block, "data")]
    assert field(update, "id")
    assert json.loads(field(update, "data") or "") == {
        "jsonrpc": "2.0",
        "method": "notifications/resources/updated",
        "params": {"uri": EVENTS_URI},
    }


async def test_a_2026_request_accepting_only_sse_gets_a_one_event_stream(
    http: Http, token: str
) -> None:
    response = await post_modern(http, token, "tools/list", headers={"Accept": "text/event-stream"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    (answer,) = sse_blocks(response.text)
    assert field(answer, "id") is None  # 2026-07-28 has no resumption
    assert json.loads(field(answer, "data") or "")["result"]["resultType"] == "complete"


async def _sse_post(http: Http, token: str, session_id: str, body: Any) -> tuple[str, str, Any]:
    response = await post_legacy(
        http, token, session_id, LATEST_HANDSHAKE, body, accept="text/event-stream"
    )
    prime, answer = sse_blocks(response.text)
    return field(prime, "id") or "", field(answer, "id") or "", field(answer, "data")


async def test_a_get_with_last_event_id_replays_the_rest_of_that_stream_only(
    http: Http, token: str
) -> None:
    session_id = await open_session(http, token)
    first = request("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}, request_id=11)
    prime, answer_id, answer = await _sse_post(http, token, session_id, first)
    _, other_id, other = await _sse_post(http, token, session_id, request("ping", request_id=12))
    headers = {
        **legacy_headers(token, session_id, LATEST_HANDSHAKE, accept="text/event-stream"),
        "Last-Event-ID": prime,
    }
    async with asgi_stream(http.app, "GET", "/mcp", headers) as stream:
        assert stream.status == 200
        await stream.read_until(answer_id.encode() + b"\n")
        await stream.read_until(b"\n\n", timeout=1)
        replayed = [block for block in stream.events() if field(block, "data")]
    assert replayed == [[("id", answer_id), ("event", "message"), ("data", answer)]]
    assert json.loads(answer)["result"]["structuredContent"]["result"] == 3
    assert other_id.encode() not in stream.body
    assert (other or "") not in stream.body.decode()


async def test_a_get_with_the_last_event_id_of_a_stream_replays_nothing(
    http: Http, token: str
) -> None:
    session_id = await open_session(http, token)
    _, answer_id, _ = await _sse_post(http, token, session_id, request("ping"))
    headers = {
        **legacy_headers(token, session_id, LATEST_HANDSHAKE, accept="text/event-stream"),
        "Last-Event-ID": answer_id,
    }
    async with asgi_stream(http.app, "GET", "/mcp", headers) as stream:
        assert await stream.read_until(b"\n\n") == b"retry: 3000\n\n"
        with anyio.move_on_after(0.3):
            await stream.read_until(b"data:")
        assert b"data:" not in stream.body


async def test_a_last_event_id_of_another_session_replays_nothing(http: Http, token: str) -> None:
    first = await open_session(http, token)
    prime, _, _ = await _sse_post(http, token, first, request("ping"))
    second = await open_session(http, token)
    headers = {
        **legacy_headers(token, second, LATEST_HANDSHAKE, accept="text/event-stream"),
        "Last-Event-ID": prime,
    }
    async with asgi_stream(http.app, "GET", "/mcp", headers) as stream:
        assert await stream.read_until(b"\n\n") == b"retry: 3000\n\n"
        with anyio.move_on_after(0.3):
            await stream.read_until(b"data:")
        assert b"data:" not in stream.body


async def test_a_2025_03_26_session_takes_batches(http: Http, token: str) -> None:
    session_id = await open_session(http, token, "2025-03-26")
    batch = [
        request("ping", request_id=1),
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        request("tools/call", {"name": "multiply", "arguments": {"a": 6, "b": 7}}, request_id="x"),
    ]
    response = await post_legacy(http, token, session_id, "2025-03-26", batch)
    assert response.status_code == 200
    answers = response.json()
    assert [answer["id"] for answer in answers] == [1, "x"]
    assert answers[0]["result"] == {}
    assert answers[1]["result"]["structuredContent"]["result"] == 42
    only_notifications = [{"jsonrpc": "2.0", "method": "notifications/initialized"}]
    quiet = await post_legacy(http, token, session_id, "2025-03-26", only_notifications)
    assert quiet.status_code == 202
    assert quiet.content == b""


async def test_an_invalid_member_of_a_batch_gets_its_own_error(http: Http, token: str) -> None:
    session_id = await open_session(http, token, "2025-03-26")
    response = await post_legacy(http, token, session_id, "2025-03-26", [request("ping"), 5])
    assert response.status_code == 200
    answers = response.json()
    assert answers[0] == {"jsonrpc": "2.0", "id": 1, "result": {}}
    assert answers[1]["id"] is None
    assert answers[1]["error"]["code"] == -32600


@pytest.mark.parametrize("version", ["2025-11-25", "2025-06-18"])
async def test_later_handshake_versions_refuse_batches(
    http: Http, token: str, version: str
) -> None:
    session_id = await open_session(http, token, version)
    response = await post_legacy(http, token, session_id, version, [request("ping")])
    assert_error(response, 400, -32600)


async def test_a_batch_at_2026_07_28_is_an_invalid_request(http: Http, token: str) -> None:
    body = [modern_request("tools/list")]
    headers = modern_headers(token, body[0])
    response = await http.post("/mcp", content=json.dumps(body), headers=headers)
    assert_error(response, 400, -32600)


# --- 2024-11-05 HTTP+SSE ---------------------------------------------------------------------


ENDPOINT_EVENT = re.compile(rb"event: endpoint\ndata: (?P<url>[^\n]*)\n\n")


@pytest.mark.parametrize(
    ("root_path", "prefix"), [("", ""), ("/prefix", "/prefix"), ("/a/b", "/a/b")]
)
async def test_the_sse_stream_first_names_its_message_endpoint(
    http: Http, sse_token: str, root_path: str, prefix: str
) -> None:
    async with asgi_stream(
        http.app,
        "GET",
        "/sse",
        {**bearer(sse_token), "Accept": "text/event-stream"},
        root_path=root_path,
    ) as stream:
        assert stream.status == 200
        assert stream.headers["content-type"] == "text/event-stream"
        body = await stream.read_until(b"\n\n")
    match = ENDPOINT_EVENT.match(body)
    assert match is not None, body
    url = match["url"].decode()
    assert re.fullmatch(re.escape(prefix) + r"/messages\?session_id=[\x21-\x7e]{16,}", url), url


@asynccontextmanager
async def legacy_sse(http: Http, token: str) -> AsyncIterator[tuple[Stream, str]]:
    """An open ``GET /sse`` stream and its message endpoint."""
    headers = {**bearer(token), "Accept": "text/event-stream"}
    async with asgi_stream(http.app, "GET", "/sse", headers) as stream:
        body = await stream.read_until(b"\n\n")
        match = ENDPOINT_EVENT.match(body)
        assert match is not None
        yield stream, match["url"].decode()


async def test_a_message_is_accepted_and_answered_on_the_stream(http: Http, sse_token: str) -> None:
    async with legacy_sse(http, sse_token) as (stream, endpoint):
        init = request("initialize", {"protocolVersion": "2024-11-05", "capabilities": {}}, 1)
        call = request("tools/call", {"name": "subtract", "arguments": {"a": 5, "b": 7}}, 2)
        for body in (init, {"jsonrpc": "2.0", "method": "notifications/initialized"}, call):
            response = await http.post(endpoint, json=body, headers=bearer(sse_token))
            assert response.status_code == 202
            assert response.content == b""
        await stream.read_until(b'"id":2')
        await stream.read_until(b"\n\n")
        answers = [block for block in stream.events() if field(block, "event") == "message"]
    decoded = [json.loads(field(block, "data") or "") for block in answers]
    assert decoded[0]["result"]["protocolVersion"] == "2024-11-05"
    assert decoded[1]["id"] == 2
    assert decoded[1]["result"]["structuredContent"]["result"] == -2


async def test_a_message_for_an_unknown_session_is_404(http: Http, sse_token: str) -> None:
    response = await http.post(
        "/messages?session_id=nope", json=request("ping"), headers=bearer(sse_token)
    )
    assert_error(response, 404, -32600)


async def test_a_message_for_another_clients_session_is_404(http: Http, sse_token: str) -> None:
    other = await fetch_token(http, ODD_ID, ODD_SECRET, resource=SSE_ENDPOINT)
    async with legacy_sse(http, sse_token) as (_, endpoint):
        response = await http.post(endpoint, json=request("ping"), headers=bearer(other))
        assert_error(response, 404, -32600)


@pytest.mark.parametrize(
    "body", [b"{", b'{"jsonrpc":"2.0","id":1,"method":"p\xffng"}'], ids=["truncated", "not utf-8"]
)
async def test_a_message_endpoint_refuses_malformed_json(
    http: Http, sse_token: str, body: bytes
) -> None:
    async with legacy_sse(http, sse_token) as (_, endpoint):
        response = await http.post(
            endpoint,
            content=body,
            headers={**bearer(sse_token), "Content-Type": "application/json"},
        )
        assert_error(response, 400, -32700)


# --- transport security ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "null", "http://calc.test.evil.example", "https://calc.test"]
)
@pytest.mark.parametrize(("method", "path"), [("POST", "/mcp"), ("GET", "/sse")])
async def test_a_foreign_origin_is_403(
    http: Http, token: str, origin: str, method: str, path: str
) -> None:
    response = await http.request(
        method, path, headers={**bearer(token), "Accept": BOTH, "Origin": origin}, content=b"{}"
    )
    assert_error(response, 403, -32600)


@pytest.mark.parametrize(
    "origin", ["http://calc.test", "http://localhost:6274", "http://127.0.0.1"]
)
async def test_an_allowed_origin_is_served(http: Http, token: str, origin: str) -> None:
    response = await post_modern(http, token, "tools/list", headers={"Origin": origin})
    assert_result(response)


@pytest.mark.parametrize("host", ["evil.example", "10.1.2.3:8001", "calc.test.evil.example", ""])
@pytest.mark.parametrize(("method", "path"), [("POST", "/mcp"), ("GET", "/sse")])
async def test_a_foreign_host_is_421(
    http: Http, token: str, host: str, method: str, path: str
) -> None:
    response = await http.request(
        method, path, headers={**bearer(token), "Accept": BOTH, "Host": host}, content=b"{}"
    )
    assert_error(response, 421, -32600)


@pytest.mark.parametrize("host", ["calc.test", "localhost:8001", "127.0.0.1:8001", "LOCALHOST"])
async def test_an_allowed_host_is_served(http: Http, token: str, host: str) -> None:
    assert_result(await post_modern(http, token, "tools/list", headers={"Host": host}))


@pytest.mark.parametrize(
    "headers", [{"Host": "[::1]:8001"}, {"Origin": "http://[::1]:6274"}], ids=["host", "origin"]
)
async def test_the_ipv6_loopback_is_allowed_by_default(
    http: Http, token: str, headers: dict[str, str]
) -> None:
    assert_result(await post_modern(http, token, "tools/list", headers=headers))


async def test_the_servers_own_address_is_421_unless_allowed(
    tmp_path: Path, clock: FixedClock
) -> None:
    settings = make_settings(tmp_path, mcp_allowed_hosts="calc.test", port=8001, host="0.0.0.0")  # noqa: S104
    container = build_container(settings)
    container.clock.override(providers.Object(clock))
    async with running(container) as http:
        token = await fetch_token(http)
        for host in ("127.0.0.1:8001", "localhost:8001", "192.0.2.10:8001"):
            response = await post_modern(http, token, "tools/list", headers={"Host": host})
            assert_error(response, 421, -32600)
        assert_result(await post_modern(http, token, "tools/list"))


async def test_configured_origins_replace_the_defaults(tmp_path: Path, clock: FixedClock) -> None:
    settings = make_settings(tmp_path, mcp_allowed_origins="https://app.example")
    container = build_container(settings)
    container.clock.override(providers.Object(clock))
    async with running(container) as http:
        token = await fetch_token(http)
        allowed = await post_modern(
            http, token, "tools/list", headers={"Origin": "https://app.example"}
        )
        assert_result(allowed)
        local = await post_modern(
            http, token, "tools/list", headers={"Origin": "http://localhost:6274"}
        )
        assert_error(local, 403, -32600)


TOO_LARGE = b'{"jsonrpc":"2.0","id":1,"method":"ping","pad":"' + b"x" * (1024 * 1024) + b'"}'


async def test_a_body_over_one_megabyte_is_413(http: Http, token: str) -> None:
    headers = {**bearer(token), "Accept": BOTH, "Content-Type": "application/json"}
    response = await http.post("/mcp", content=TOO_LARGE, headers=headers)
    assert response.status_code == 413


async def test_a_message_over_one_megabyte_is_413(http: Http, sse_token: str) -> None:
    async with legacy_sse(http, sse_token) as (_, endpoint):
        headers = {**bearer(sse_token), "Content-Type": "application/json"}
        response = await http.post(endpoint, content=TOO_LARGE, headers=headers)
        assert response.status_code == 413


async def test_a_body_of_exactly_one_megabyte_is_read(http: Http, token: str) -> None:
    head = json.dumps(modern_request("tools/list"))[:-1].encode()
    body = head + b" " * (1024 * 1024 - len(head) - 1) + b"}"
    assert len(body) == 1024 * 1024
    body_json = modern_request("tools/list")
    response = await http.post("/mcp", content=body, headers=modern_headers(token, body_json))
    assert_result(response)


@pytest.mark.parametrize("with_header", [False, True])
async def test_a_token_in_the_query_string_is_refused(
    http: Http, token: str, with_header: bool
) -> None:
    body = modern_request("tools/list")
    headers = modern_headers(token, body)
    if not with_header:
        del headers["Authorization"]
    response = await http.post(
        "/mcp", params={"access_token": token}, content=json.dumps(body), headers=headers
    )
    assert response.status_code == 400
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="calcmcp", error="invalid_request"')
    assert f'resource_metadata="{WELL_KNOWN}/mcp"' in challenge
    assert token not in response.text


# --- JSON-RPC framing ------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{", b"", b"not json", b'{"jsonrpc":"2.0",}', b"\xff\xfe"])
@pytest.mark.parametrize("modern_headers_sent", [True, False], ids=["2026", "no-version"])
async def test_malformed_json_is_a_parse_error(
    http: Http, token: str, body: bytes, modern_headers_sent: bool
) -> None:
    headers = {**bearer(token), "Accept": BOTH, "Content-Type": "application/json"}
    if modern_headers_sent:
        headers.update({"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list"})
    response = await http.post("/mcp", content=body, headers=headers)
    assert_error(response, 400, -32700)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            b'"\x80"',
        ),
        b'{"jsonrpc":"2.0","id":1,"method":"p\xffng"}',
        b'{"jsonrpc":"2.0","id":"\xff","method":"ping"}',
    ],
)
async def test_invalid_utf8_inside_a_string_is_a_parse_error(
    http: Http, token: str, body: bytes
) -> None:
    headers = {**bearer(token), "Accept": BOTH, "Content-Type": "application/json"}
    response = await http.post("/mcp", content=body, headers=headers)
    assert_error(response, 400, -32700)


NOT_UTF8_PARAMS = {
    "operand": ("add", b'"arguments":{}', b'"arguments":{"a":1,"b":"\xff"}'),
    "message": ("broadcast", b'"arguments":{}', b'"arguments":{"message":"\xff"}'),
    "name": ("add", b'"name":"add"', b'"name":"a\xffd"'),
}


@pytest.mark.parametrize(("name", "sent", "swapped"), NOT_UTF8_PARAMS.values(), ids=NOT_UTF8_PARAMS)
async def test_invalid_utf8_inside_the_params_is_a_parse_error(
    http: Http, token: str, name: str, sent: bytes, swapped: bytes
) -> None:
    body = modern_request("tools/call", {"name": name, "arguments": {}})
    raw = json.dumps(body, separators=(",", ":")).encode()
    assert raw.count(sent) == 1
    response = await http.post(
        "/mcp", content=raw.replace(sent, swapped), headers=modern_headers(token, body)
    )
    assert_error(response, 400, -32700, None)  # not JSON text: the id cannot be known


INVALID_REQUESTS = {
    "string": "just a string",
    "number": 42,
    "null": None,
    "empty batch": [],
    "wrong jsonrpc": {"jsonrpc": "1.0", "id": 1, "method": "tools/list"},
    "no jsonrpc": {"id": 1, "method": "tools/list"},
    "method not a string": {"jsonrpc": "2.0", "id": 1, "method": 5},
    "id an object": {"jsonrpc": "2.0", "id": {"a": 1}, "method": "tools/list"},
    "id a boolean": {"jsonrpc": "2.0", "id": True, "method": "tools/list"},
    "id a float": {"jsonrpc": "2.0", "id": 1.5, "method": "tools/list"},
    "neither method nor id": {"jsonrpc": "2.0", "params": {}},
}


@pytest.mark.parametrize("body", INVALID_REQUESTS.values(), ids=INVALID_REQUESTS)
async def test_an_invalid_request_object_is_an_invalid_request(
    http: Http, token: str, body: Any
) -> None:
    headers = {
        **bearer(token),
        "Accept": BOTH,
        "Content-Type": "application/json",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/list",
    }
    response = await http.post("/mcp", content=json.dumps(body), headers=headers)
    assert_error(response, 400, -32600)


async def test_params_that_are_not_an_object_are_invalid_params(http: Http, token: str) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": [1, 2]}
    headers = {
        **bearer(token),
        "Accept": BOTH,
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "add",
    }
    response = await http.post("/mcp", content=json.dumps(body), headers=headers)
    assert_error(response, 400, -32602, 1)


# --- tools ------------------------------------------------------------------------------------


async def test_an_unknown_tool_is_invalid_params(http: Http, token: str) -> None:
    response = await post_modern(http, token, "tools/call", {"name": "sqrt", "arguments": {}})
    assert_error(response, 400, -32602, 1)
    session_id = await open_session(http, token)
    body = request("tools/call", {"name": "sqrt", "arguments": {"a": 4}}, request_id=2)
    legacy = await post_legacy(http, token, session_id, LATEST_HANDSHAKE, body)
    assert_error(legacy, 200, -32602, 2)


@pytest.mark.parametrize(
    ("client_id", "secret", "expected"),
    [
        (DEV_ID, DEV_SECRET, ALL_TOOLS),
        (CALC_ONLY_ID, CALC_ONLY_SECRET, CALCULATOR_TOOLS),
        (SSE_ONLY_ID, SSE_ONLY_SECRET, ["broadcast"]),
    ],
    ids=["both scopes", "calculator", "sse"],
)
async def test_tools_list_shows_what_the_scopes_allow_in_a_stable_order(
    http: Http, client_id: str, secret: str, expected: list[str]
) -> None:
    token = await fetch_token(http, client_id, secret)
    first = assert_result(await post_modern(http, token, "tools/list"))
    second = assert_result(await post_modern(http, token, "tools/list", request_id=2), 2)
    assert [tool["name"] for tool in first["tools"]] == expected
    assert first["tools"] == second["tools"]


async def test_every_tool_is_described_with_closed_input_and_an_output_schema(
    http: Http, token: str
) -> None:
    tools = assert_result(await post_modern(http, token, "tools/list"))["tools"]
    for tool in tools:
        assert isinstance(tool["description"], str), tool
        assert tool["description"], tool
        assert tool["inputSchema"]["type"] == "object"
        assert tool["inputSchema"]["additionalProperties"] is False
        assert set(tool["inputSchema"]["required"]) <= set(tool["inputSchema"]["properties"])
        assert tool["outputSchema"]["type"] == "object"
    calculator = [tool for tool in tools if tool["name"] in CALCULATOR_TOOLS]
    assert all(tool["inputSchema"]["required"] == ["a", "b"] for tool in calculator)


@pytest.mark.parametrize(
    ("name", "a", "b", "result"),
    [
        ("add", 0.1, "0.2", "0.3"),
        ("subtract", "1", 3, "-2"),
        ("multiply", "1.1", 1.1, "1.21"),
        ("divide", 1, 3, "0.3333333333333333333333333333333333"),
    ],
)
async def test_a_result_carries_structured_content_and_the_same_json_as_text(
    http: Http, token: str, *, name: str, a: Any, b: Any, result: str
) -> None:
    response = await post_modern(
        http, token, "tools/call", {"name": name, "arguments": {"a": a, "b": b}}
    )
    answer = assert_result(response)
    assert answer.get("isError", False) is False
    structured = answer["structuredContent"]
    assert structured["operation"] == name
    assert f'"result":{result}'.encode() in response.content  # an exact JSON number on the wire
    (text,) = answer["content"]
    assert text["type"] == "text"
    assert json.loads(text["text"]) == structured
    assert f'"result":{result}' in text["text"]


REFUSED_ARGUMENTS = {
    "division by zero": ("divide", {"a": 1, "b": 0}, "division by zero is undefined"),
    "operand a string of letters": ("add", {"a": "abc", "b": 1}, "a is not a decimal number"),
    "operand not finite": ("add", {"a": "NaN", "b": 1}, "a must be a finite number"),
    "operand out of range": ("add", {"a": "1e999999", "b": 1}, "a must be zero or between"),
    "extra argument": ("add", {"a": 1, "b": 2, "c": 3}, "unexpected argument(s): c"),
    "missing b": ("add", {"a": 1}, "b is required"),
    "no arguments": ("multiply", None, "a is required"),
    "a boolean": ("add", {"a": True, "b": 1}, "a must be a number or a decimal string"),
    "null": ("add", {"a": 1, "b": None}, "b must be a number or a decimal string"),
    "an object": ("add", {"a": {"v": 1}, "b": 1}, "a must be a number or a decimal string"),
    "too many digits": ("add", {"a": "1" * 60, "b": 1}, "a has 60 significant digits"),
    "broadcast without message": ("broadcast", {}, "message is required"),
    "broadcast of a number": ("broadcast", {"message": 5}, "message must be a string"),
    "empty broadcast": ("broadcast", {"message": ""}, "message"),
}


@pytest.mark.parametrize(
    ("name", "arguments", "message"), REFUSED_ARGUMENTS.values(), ids=REFUSED_ARGUMENTS
)
async def test_refused_arguments_are_an_error_result_with_a_clear_message(
    http: Http, token: str, name: str, arguments: dict[str, Any] | None, message: str
) -> None:
    params: dict[str, Any] = {"name": name}
    if arguments is not None:
        params["arguments"] = arguments
    answer = assert_result(await post_modern(http, token, "tools/call", params))
    assert answer["isError"] is True
    (text,) = answer["content"]
    assert message in text["text"], text


@pytest.mark.parametrize("operand", ["1e999999", "-1e999999", "1e1001"])
async def test_an_out_of_range_json_number_is_an_error_result(
    http: Http, token: str, operand: str
) -> None:
    body = modern_request("tools/call", {"name": "add", "arguments": {"a": 0, "b": 1}})
    raw = json.dumps(body).replace('"b": 1', f'"b": {operand}')
    response = await http.post("/mcp", content=raw, headers=modern_headers(token, body))
    answer = assert_result(response)
    assert answer["isError"] is True
    assert "b must be zero or between" in answer["content"][0]["text"]


@pytest.mark.parametrize("operand", ["1e400", "-1e400"])
async def test_a_json_number_beyond_a_float_but_in_range_is_computed_exactly(
    http: Http, token: str, operand: str
) -> None:
    body = modern_request("tools/call", {"name": "add", "arguments": {"a": 0, "b": 1}})
    raw = json.dumps(body).replace('"b": 1', f'"b": {operand}')
    response = await http.post("/mcp", content=raw, headers=modern_headers(token, body))
    assert response.status_code == 200, response.text
    answer = json.loads(response.text, parse_float=Decimal)["result"]
    assert "isError" not in answer
    structured = answer["structuredContent"]
    assert Decimal(structured["b"]) == Decimal(operand)
    assert Decimal(structured["result"]) == Decimal(operand)


async def test_a_broadcast_without_the_sse_scope_is_403_insufficient_scope(http: Http) -> None:
    token = await fetch_token(http, CALC_ONLY_ID, CALC_ONLY_SECRET)
    response = await post_modern(
        http, token, "tools/call", {"name": "broadcast", "arguments": {"message": "hi"}}
    )
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="calcmcp", error="insufficient_scope"')
    assert 'scope="sse"' in challenge
    assert f'resource_metadata="{WELL_KNOWN}/mcp"' in challenge


# --- the events resource ---------------------------------------------------------------------


def _read(response: Any) -> list[dict[str, Any]]:
    (content,) = assert_result(response)["contents"]
    assert content["uri"] == EVENTS_URI
    assert content["mimeType"] == "application/json"
    events: list[dict[str, Any]] = json.loads(content["text"])
    return events


async def test_resources_follow_the_audience_rule(http: Http, token: str) -> None:
    other = await fetch_token(http, ODD_ID, ODD_SECRET)
    mine = {"name": "add", "arguments": {"a": 11111, "b": 22222}}
    theirs = {"name": "add", "arguments": {"a": 33333, "b": 44444}}
    assert "isError" not in assert_result(await post_modern(http, token, "tools/call", mine))
    assert "isError" not in assert_result(await post_modern(http, other, "tools/call", theirs))
    shout = {"name": "broadcast", "arguments": {"message": "hello all"}}
    assert_result(await post_modern(http, token, "tools/call", shout))
    listed = assert_result(await post_modern(http, other, "resources/list"))["resources"]
    assert [resource["uri"] for resource in listed] == [EVENTS_URI]
    seen_by_other = _read(await post_modern(http, other, "resources/read", {"uri": EVENTS_URI}))
    seen_by_me = _read(await post_modern(http, token, "resources/read", {"uri": EVENTS_URI}))
    assert {
        event.get("client_id") for event in seen_by_other if event["type"] == "calculation"
    } == {ODD_ID}
    assert {event.get("client_id") for event in seen_by_me if event["type"] == "calculation"} == {
        DEV_ID
    }
    assert [event["result"] for event in seen_by_me if event["type"] == "calculation"] == [33333]
    assert any(event.get("message") == "hello all" for event in seen_by_other)
    assert any(event.get("message") == "hello all" for event in seen_by_me)


async def test_a_client_without_the_sse_scope_sees_no_resources(http: Http) -> None:
    token = await fetch_token(http, CALC_ONLY_ID, CALC_ONLY_SECRET)
    assert assert_result(await post_modern(http, token, "resources/list"))["resources"] == []
    response = await post_modern(http, token, "resources/read", {"uri": EVENTS_URI})
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]


async def test_an_unknown_resource_is_invalid_params_at_2026_and_not_found_before(
    http: Http, token: str
) -> None:
    response = await post_modern(http, token, "resources/read", {"uri": "calc://nope"})
    assert assert_error(response, 400, -32602, 1)["data"] == {"uri": "calc://nope"}
    session_id = await open_session(http, token)
    body = request("resources/read", {"uri": "calc://nope"}, request_id=3)
    legacy = await post_legacy(http, token, session_id, LATEST_HANDSHAKE, body)
    assert assert_error(legacy, 200, -32002, 3)["data"] == {"uri": "calc://nope"}


# --- authorization: RFC 9728 metadata and challenges ----------------------------------------


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("/.well-known/oauth-protected-resource/mcp", ENDPOINT),
        ("/.well-known/oauth-protected-resource/sse", SSE_ENDPOINT),
        ("/.well-known/oauth-protected-resource", PUBLIC_URL),
    ],
    ids=["mcp", "sse", "root"],
)
async def test_protected_resource_metadata_names_the_resource_and_its_issuer(
    http: Http, path: str, resource: str
) -> None:
    response = await http.get(path, headers={"MCP-Protocol-Version": MODERN})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document = response.json()
    assert document["resource"] == resource
    assert document["authorization_servers"] == [PUBLIC_URL]
    assert document["scopes_supported"] == ["calculator", "sse"]
    assert document["bearer_methods_supported"] == ["header"]
    issuer = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert issuer["issuer"] == document["authorization_servers"][0]
    assert issuer["authorization_endpoint"].startswith("http")
    assert "client_secret_basic" in issuer["token_endpoint_auth_methods_supported"]


@pytest.mark.parametrize(
    ("method", "path", "metadata"),
    [
        ("POST", "/mcp", "mcp"),
        ("GET", "/mcp", "mcp"),
        ("DELETE", "/mcp", "mcp"),
        ("GET", "/sse", "sse"),
        ("POST", "/messages?session_id=x", "sse"),
    ],
)
async def test_no_token_is_a_401_challenge_naming_the_metadata_without_an_error(
    http: Http, method: str, path: str, metadata: str
) -> None:
    response = await http.request(method, path, headers={"Accept": BOTH}, content=b"{}")
    assert response.status_code == 401
    # the least that uses the endpoint: tools needing more answer 403 and the client steps up
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="calcmcp", scope="calculator", resource_metadata="{WELL_KNOWN}/{metadata}"'
    )


@pytest.mark.parametrize(
    ("resource", "path"),
    [(None, "/mcp"), (SSE_ENDPOINT, "/mcp"), (ENDPOINT, "/sse"), (None, "/sse")],
    ids=["api token at mcp", "sse token at mcp", "mcp token at sse", "api token at sse"],
)
async def test_a_token_for_another_resource_is_401_invalid_token(
    http: Http, resource: str | None, path: str
) -> None:
    token = await fetch_token(http, resource=resource)
    response = await http.get(path, headers={**bearer(token), "Accept": "text/event-stream"})
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="calcmcp", error="invalid_token"')
    assert 'scope="calculator"' in challenge
    assert f'resource_metadata="{WELL_KNOWN}{path}"' in challenge


async def test_a_garbled_token_is_401_invalid_token(http: Http) -> None:
    response = await post_modern(http, "not-a-jwt", "tools/list")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert f'resource_metadata="{WELL_KNOWN}/mcp"' in response.headers["www-authenticate"]
