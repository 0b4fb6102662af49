"""The official MCP Python SDK client against the real server process and ``calcmcp stdio``.

Streamable HTTP in both eras (``auto`` negotiates 2026-07-28, ``legacy`` initializes at
2025-11-25), the legacy HTTP+SSE transport, and stdio; client-credentials discovery from a bare
401 with ``client_secret_basic`` and with ``client_secret_post``. The SDK talks to
``http://localhost:<port>``: the server's default public URL, hence its issuer and its tokens'
audience. Every session is bounded by a timeout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.auth.exceptions import OAuthTokenError
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

from tests.e2e.conftest import (
    DEV_ID,
    DEV_SECRET,
    OTHER_ID,
    OTHER_SECRET,
    REPO,
    Server,
    start_server,
)

pytestmark = pytest.mark.anyio

CALC_ID, CALC_SECRET = "calculator-only", "calculator-only-secret-0123456789"
CLIENTS = json.dumps(
    [
        {"client_id": OTHER_ID, "client_secret": OTHER_SECRET, "scopes": ["calculator", "sse"]},
        {"client_id": CALC_ID, "client_secret": CALC_SECRET, "scopes": ["calculator"]},
    ]
)
CALCULATOR_TOOLS = ["add", "subtract", "multiply", "divide"]
ALL_TOOLS = [*CALCULATOR_TOOLS, "broadcast"]
EVENTS_URI = "calc://events/recent"
SESSION_TIMEOUT = 30.0
Method = Literal["client_secret_basic", "client_secret_post"]


@pytest.fixture(scope="module")
def mcp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with the development client, a second client, and a calculator-only client."""
    with start_server(tmp_path_factory.mktemp("mcp-server"), clients=CLIENTS) as running:
        yield running


def base_url(server: Server) -> str:
    """The server's public URL (its issuer): the default, ``http://localhost:<port>``."""
    return f"http://localhost:{server.port}"


class MemoryStorage:
    """The SDK's ``TokenStorage``, in memory."""

    def __init__(self, tokens: OAuthToken | None = None) -> None:
        self.tokens = tokens
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def provider(
    server: Server,
    path: str = "/mcp",
    method: Method = "client_secret_basic",
    *,
    client_id: str = DEV_ID,
    secret: str = DEV_SECRET,
    scope: str = "calculator sse",
    storage: MemoryStorage | None = None,
) -> ClientCredentialsOAuthProvider:
    """The SDK's client-credentials auth for the endpoint at ``path``."""
    base = base_url(server)
    return ClientCredentialsOAuthProvider(
        server_url=base + path,
        storage=storage or MemoryStorage(),
        client_id=client_id,
        client_secret=secret,
        token_endpoint_auth_method=method,
        scope=scope,
        issuer=base,
    )


class Wire:
    """Every exchange an ``httpx2`` client made, auth-flow requests included."""

    def __init__(self) -> None:
        self.exchanges: list[dict[str, Any]] = []

    async def _on_request(self, request: httpx2.Request) -> None:
        body = await request.aread()
        self.exchanges.append(
            {
                "method": request.method,
                "path": request.url.path,
                "authorization": request.headers.get("authorization", ""),
                "body": body,
            }
        )

    async def _on_response(self, response: httpx2.Response) -> None:
        sent = self.exchanges[-1]
        sent["status"] = response.status_code
        sent["challenge"] = response.headers.get("www-authenticate")

    @property
    def hooks(self) -> dict[str, list[Any]]:
        return {"request": [self._on_request], "response": [self._on_response]}

    def to(self, method: str, path: str) -> list[dict[str, Any]]:
        return [e for e in self.exchanges if e["method"] == method and e["path"] == path]


@asynccontextmanager
async def streamable(
    server: Server, auth: ClientCredentialsOAuthProvider, mode: str, wire: Wire | None = None
) -> AsyncIterator[Client]:
    """An SDK client session over Streamable HTTP, bounded in time."""
    url = base_url(server) + "/mcp"
    timeout = httpx2.Timeout(10, read=SESSION_TIMEOUT)
    hooks = wire.hooks if wire is not None else {}
    with anyio.fail_after(SESSION_TIMEOUT):
        async with httpx2.AsyncClient(auth=auth, timeout=timeout, event_hooks=hooks) as http:
            transport = streamable_http_client(url, http_client=http)
            async with Client(transport, mode=mode, cache=None) as client:
                yield client


async def use_every_tool(client: Client, tag: str, *, step_up: bool = False) -> None:
    """List the tools and call each one, as a client would.

    With ``step_up`` the client holds ``calculator`` only at first (what a bare 401 challenges
    for): it sees the four calculator tools and no resource, ``broadcast`` answers 403
    ``insufficient_scope`` and the SDK steps up to ``calculator sse`` before retrying it.
    """
    tools = (await client.list_tools()).tools
    assert [tool.name for tool in tools] == (CALCULATOR_TOOLS if step_up else ALL_TOOLS)
    resources = (await client.list_resources()).resources
    assert [str(resource.uri) for resource in resources] == ([] if step_up else [EVENTS_URI])
    expected: dict[str, tuple[dict[str, Any], float]] = {
        "add": ({"a": 0.1, "b": "0.2"}, 0.3),
        "subtract": ({"a": "10", "b": 4}, 6),
        "multiply": ({"a": 1.1, "b": 1.1}, 1.21),
        "divide": ({"a": 1, "b": 4}, 0.25),
    }
    for name, (arguments, result) in expected.items():
        answer = await client.call_tool(name, arguments)
        assert not answer.is_error, answer
        assert answer.structured_content is not None
        assert answer.structured_content["operation"] == name
        assert answer.structured_content["result"] == result
        assert json.loads(answer.content[0].text) == answer.structured_content  # type: ignore[union-attr]
    refused = await client.call_tool("divide", {"a": 1, "b": 0})
    assert refused.is_error
    assert "division by zero" in refused.content[0].text  # type: ignore[union-attr]
    sent = await client.call_tool("broadcast", {"message": f"hello from {tag}"})
    assert not sent.is_error
    assert sent.structured_content
    assert sent.structured_content["event_id"]
    if step_up:  # the stepped-up token carries 'sse': the whole surface is there now
        tools = (await client.list_tools()).tools
        assert [tool.name for tool in tools] == ALL_TOOLS
        resources = (await client.list_resources()).resources
        assert [str(resource.uri) for resource in resources] == [EVENTS_URI]
    read = await client.read_resource(EVENTS_URI)
    events = json.loads(read.contents[0].text)  # type: ignore[union-attr]
    assert any(event.get("message") == f"hello from {tag}" for event in events)
    assert any(event.get("operation") == "multiply" and event["result"] == 1.21 for event in events)


# --- Streamable HTTP: discovery from a bare 401, both eras, both client auth methods -------


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
@pytest.mark.parametrize(("mode", "version"), [("auto", "2026-07-28"), ("legacy", "2025-11-25")])
async def test_the_sdk_client_discovers_its_way_from_a_bare_401_and_uses_every_tool(
    mcp_server: Server, method: Method, mode: str, version: str
) -> None:
    wire = Wire()
    async with streamable(mcp_server, provider(mcp_server, method=method), mode, wire) as client:
        assert client.protocol_version == version
        await use_every_tool(client, f"{mode} {method}", step_up=True)

    base = base_url(mcp_server)
    metadata_url = f"{base}/.well-known/oauth-protected-resource/mcp"
    first = wire.exchanges[0]
    assert (first["method"], first["path"], first["authorization"]) == ("POST", "/mcp", "")
    assert first["status"] == 401
    # a bare 401 challenges for the least that uses /mcp, and the SDK requests just that
    assert first["challenge"] == (
        f'Bearer realm="calcmcp", scope="calculator", resource_metadata="{metadata_url}"'
    )
    metadata = wire.to("GET", "/.well-known/oauth-protected-resource/mcp")
    assert [e["status"] for e in metadata] == [200]
    assert [e["status"] for e in wire.to("GET", "/.well-known/oauth-authorization-server")] == [200]
    token_requests = wire.to("POST", "/token")
    assert [e["status"] for e in token_requests] == [200, 200]
    forms = [parse_qs(e["body"].decode()) for e in token_requests]
    assert [form["scope"] for form in forms] == [["calculator"], ["calculator sse"]]
    for token_request, form in zip(token_requests, forms, strict=True):
        assert form["grant_type"] == ["client_credentials"]
        assert form["resource"] == [f"{base}/mcp"]
        if method == "client_secret_basic":
            assert token_request["authorization"].startswith("Basic ")
            assert "client_secret" not in form
        else:
            assert token_request["authorization"] == ""
            assert form["client_id"] == [DEV_ID]
            assert form["client_secret"] == [DEV_SECRET]
    first_token, step_up = (wire.exchanges.index(e) for e in token_requests)
    # with the 'calculator' token, only broadcast is refused: 403 insufficient_scope naming 'sse'
    between = wire.exchanges[first_token + 1 : step_up]
    assert between
    assert all(e["authorization"].startswith("Bearer ") for e in between)
    refusals = [e for e in between if e["status"] >= 400]
    if mode == "legacy":  # no 2025 server stream without 'sse': its GET /mcp answers 405
        stream = refusals.pop(0)
        assert (stream["method"], stream["path"], stream["status"]) == ("GET", "/mcp", 405)
    (refused,) = refusals
    assert refused is between[-1]
    assert (refused["method"], refused["path"], refused["status"]) == ("POST", "/mcp", 403)
    assert json.loads(refused["body"])["params"]["name"] == "broadcast"
    assert refused["challenge"].startswith('Bearer realm="calcmcp", error="insufficient_scope"')
    assert 'scope="sse"' in refused["challenge"]
    assert f'resource_metadata="{metadata_url}"' in refused["challenge"]
    # the SDK steps up, retries broadcast with the new token, and nothing fails after that
    after = wire.exchanges[step_up + 1 :]
    assert after
    assert all(e["authorization"].startswith("Bearer ") for e in after)
    assert all(e["status"] < 400 for e in after)
    retried = after[0]
    assert (retried["method"], retried["path"], retried["status"]) == ("POST", "/mcp", 200)
    assert json.loads(retried["body"]) == json.loads(refused["body"])
    assert retried["authorization"] != refused["authorization"]


async def test_the_sdk_client_replaces_a_token_minted_for_another_resource(
    mcp_server: Server,
) -> None:
    async with httpx.AsyncClient(base_url=mcp_server.url, timeout=5) as http:
        form = {
            "grant_type": "client_credentials",
            "client_id": DEV_ID,
            "client_secret": DEV_SECRET,
        }
        api_token = (await http.post("/token", data=form)).json()
    storage = MemoryStorage(OAuthToken(**api_token))
    wire = Wire()
    async with streamable(
        mcp_server, provider(mcp_server, storage=storage), "auto", wire
    ) as client:
        # the replacement asks for what the challenge names: 'calculator'
        assert [tool.name for tool in (await client.list_tools()).tools] == CALCULATOR_TOOLS
    first = wire.exchanges[0]
    assert first["authorization"] == f"Bearer {api_token['access_token']}"
    assert first["status"] == 401
    assert first["challenge"].startswith('Bearer realm="calcmcp", error="invalid_token"')
    assert 'scope="calculator"' in first["challenge"]
    (token_request,) = wire.to("POST", "/token")
    assert token_request["status"] == 200
    assert parse_qs(token_request["body"].decode())["scope"] == ["calculator"]
    assert storage.tokens is not None
    assert storage.tokens.access_token != api_token["access_token"]


async def test_a_token_minted_for_the_rest_api_is_refused_at_mcp(mcp_server: Server) -> None:
    base = base_url(mcp_server)
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        form = {
            "grant_type": "client_credentials",
            "client_id": DEV_ID,
            "client_secret": DEV_SECRET,
        }
        token = (await http.post("/token", data=form)).json()["access_token"]
        rest = await http.post(
            "/calculator/add?a=1&b=2", headers={"Authorization": f"Bearer {token}"}
        )
        assert rest.status_code == 200, rest.text  # a good token, for the REST API
        response = await http.post(
            "/mcp",
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {"protocolVersion": "2025-11-25"},
            },
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/json, text/event-stream",
            },
        )
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="calcmcp", error="invalid_token"')
    assert f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"' in challenge


# --- the legacy HTTP+SSE transport --------------------------------------------------------


async def test_the_sdk_client_uses_every_tool_over_the_legacy_sse_transport(
    mcp_server: Server,
) -> None:
    auth = provider(mcp_server, "/sse", "client_secret_post")
    url = base_url(mcp_server) + "/sse"
    wire = Wire()

    def recorded(
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            headers=headers, timeout=timeout, auth=auth, event_hooks=wire.hooks
        )

    with anyio.fail_after(SESSION_TIMEOUT):
        async with Client(
            sse_client(
                url,
                auth=auth,
                timeout=10,
                sse_read_timeout=SESSION_TIMEOUT,
                httpx_client_factory=recorded,
            ),
            mode="legacy",
            cache=None,
        ) as client:
            assert client.protocol_version == "2025-11-25"
            await use_every_tool(client, "sse", step_up=True)

    base = base_url(mcp_server)
    first = wire.exchanges[0]
    assert (first["method"], first["path"], first["status"]) == ("GET", "/sse", 401)
    assert first["challenge"] == (
        f'Bearer realm="calcmcp", scope="calculator", '
        f'resource_metadata="{base}/.well-known/oauth-protected-resource/sse"'
    )
    token_requests = wire.to("POST", "/token")
    assert [e["status"] for e in token_requests] == [200, 200]
    forms = [parse_qs(e["body"].decode()) for e in token_requests]
    assert [form["scope"] for form in forms] == [["calculator"], ["calculator sse"]]
    assert all(form["resource"] == [f"{base}/sse"] for form in forms)
    assert [e["status"] for e in wire.exchanges if e["status"] >= 400] == [401, 403]
    (refused,) = [e for e in wire.exchanges if e["status"] == 403]
    assert (refused["method"], refused["path"]) == ("POST", "/messages")
    assert json.loads(refused["body"])["params"]["name"] == "broadcast"
    assert 'error="insufficient_scope"' in refused["challenge"]
    assert 'scope="sse"' in refused["challenge"]
    assert wire.exchanges.index(refused) + 1 == wire.exchanges.index(token_requests[1])


# --- a client with the calculator scope only ----------------------------------------------


async def _calculator_token(server: Server) -> OAuthToken:
    async with httpx.AsyncClient(base_url=server.url, timeout=5) as http:
        form = {
            "grant_type": "client_credentials",
            "client_id": CALC_ID,
            "client_secret": CALC_SECRET,
            "scope": "calculator",
            "resource": base_url(server) + "/mcp",
        }
        response = await http.post("/token", data=form)
    assert response.status_code == 200, response.text
    return OAuthToken(**response.json())


async def test_a_calculator_only_client_sees_four_tools_and_is_refused_broadcast(
    mcp_server: Server,
) -> None:
    storage = MemoryStorage(await _calculator_token(mcp_server))
    auth = provider(
        mcp_server, client_id=CALC_ID, secret=CALC_SECRET, scope="calculator", storage=storage
    )
    wire = Wire()
    seen: list[Any] = []

    async def session() -> None:
        async with streamable(mcp_server, auth, "auto", wire) as client:
            seen.append([tool.name for tool in (await client.list_tools()).tools])
            seen.append((await client.call_tool("add", {"a": 2, "b": 2})).structured_content)
            await client.call_tool("broadcast", {"message": "not allowed"})

    with pytest.raises(ExceptionGroup) as refused:  # the SDK's task group wraps the failure
        await session()
    assert seen == [CALCULATOR_TOOLS, {"operation": "add", "a": 2, "b": 2, "result": 4}]
    # the SDK tries to step up to the 'sse' scope, which this client may not have
    assert refused.group_contains(OAuthTokenError)
    forbidden = [e for e in wire.to("POST", "/mcp") if e["status"] == 403]
    assert len(forbidden) == 1
    base = base_url(mcp_server)
    assert forbidden[0]["challenge"].startswith(
        'Bearer realm="calcmcp", error="insufficient_scope"'
    )
    assert 'scope="sse"' in forbidden[0]["challenge"]
    assert (
        f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"'
        in (forbidden[0]["challenge"])
    )


async def test_a_calculator_only_client_discovers_its_way_from_a_bare_401(
    mcp_server: Server,
) -> None:
    auth = provider(mcp_server, client_id=CALC_ID, secret=CALC_SECRET, scope="calculator")
    wire = Wire()
    seen: list[Any] = []

    async def session() -> None:
        async with streamable(mcp_server, auth, "auto", wire) as client:
            seen.append([tool.name for tool in (await client.list_tools()).tools])
            seen.append([str(r.uri) for r in (await client.list_resources()).resources])
            seen.append((await client.call_tool("add", {"a": 2, "b": 2})).structured_content)
            await client.call_tool("broadcast", {"message": "not allowed"})

    with pytest.raises(ExceptionGroup) as refused:  # the SDK's task group wraps the failure
        await session()
    assert seen == [CALCULATOR_TOOLS, [], {"operation": "add", "a": 2, "b": 2, "result": 4}]
    # the SDK tries to step up to the 'sse' scope, which this client may not have
    assert refused.group_contains(OAuthTokenError, match="invalid_scope")
    base = base_url(mcp_server)
    first = wire.exchanges[0]
    assert (first["status"], first["authorization"]) == (401, "")
    assert first["challenge"] == (
        f'Bearer realm="calcmcp", scope="calculator", '
        f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"'
    )
    token_requests = wire.to("POST", "/token")
    forms = [parse_qs(e["body"].decode()) for e in token_requests]
    assert [form["scope"] for form in forms] == [["calculator"], ["calculator sse"]]
    assert [e["status"] for e in token_requests] == [200, 400]
    forbidden = [e for e in wire.to("POST", "/mcp") if e["status"] == 403]
    assert len(forbidden) == 1
    assert json.loads(forbidden[0]["body"])["params"]["name"] == "broadcast"
    assert 'error="insufficient_scope"' in forbidden[0]["challenge"]
    assert 'scope="sse"' in forbidden[0]["challenge"]
    assert wire.exchanges.index(forbidden[0]) < wire.exchanges.index(token_requests[1])


# --- stdio -------------------------------------------------------------------------------


def stdio(tmp_path: Path, **settings: str) -> StdioServerParameters:
    """``python -m src stdio`` in an empty directory (no ``.env``) with its own data dir."""
    env = {
        "PYTHONPATH": str(REPO),
        "CALCMCP_DATA_DIR": str(tmp_path / "data"),
        "CALCMCP_LOG_LEVEL": "warning",
    }
    env.update({f"CALCMCP_{name.upper()}": value for name, value in settings.items()})
    return StdioServerParameters(
        command=sys.executable, args=["-m", "src", "stdio"], env=env, cwd=str(tmp_path)
    )


@pytest.mark.parametrize(("mode", "version"), [("auto", "2026-07-28"), ("legacy", "2025-11-25")])
async def test_the_sdk_client_uses_every_tool_over_stdio(
    tmp_path: Path, mode: str, version: str
) -> None:
    with anyio.fail_after(SESSION_TIMEOUT):
        async with Client(stdio(tmp_path), mode=mode, cache=None) as client:
            assert client.protocol_version == version
            await use_every_tool(client, f"stdio {mode}")


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_stdio_with_the_calculator_scope_only_refuses_broadcast(
    tmp_path: Path, mode: str
) -> None:
    with anyio.fail_after(SESSION_TIMEOUT):
        params = stdio(tmp_path, stdio_scopes="calculator", stdio_client_id="desk")
        async with Client(params, mode=mode, cache=None) as client:
            assert [tool.name for tool in (await client.list_tools()).tools] == CALCULATOR_TOOLS
            assert (await client.list_resources()).resources == []
            with pytest.raises(MCPError) as refused:
                await client.call_tool("broadcast", {"message": "not allowed"})
            assert refused.value.code == -32001
            assert refused.value.data == {"scope": "sse"}
            answer = await client.call_tool("multiply", {"a": "6", "b": "7"})
            assert answer.structured_content == {
                "operation": "multiply",
                "a": 6,
                "b": 7,
                "result": 42,
            }
