"""calcmcp behind nginx (Debian's package), both started here on loopback.

nginx runs the configuration docs/operations.md ships (see :mod:`tests.e2e.nginx`). calcmcp's
public URL names a public-looking host, ``calc.example.test``, at nginx's port, so that nothing
needs to resolve the name: the tests' own requests go to nginx's address with that ``Host``
header, and the MCP SDK client, which follows the URLs it discovers, has nginx as its HTTP proxy
(a forward proxy request carries the public ``Host`` too).

- event streams come through at once, though the keep-alive ping is 30 s away;
- the OAuth and MCP metadata fetched through the proxy advertise the public URL, and the MCP
  ``Origin``/``Host`` checks accept the public host and still refuse others;
- the official MCP SDK client discovers its way and calls a tool through nginx, also under a
  path prefix (``/calc``), where the legacy transport's ``endpoint`` event carries the prefix;
- the client address the rate limiter and the audit log see is ``X-Forwarded-For``'s only when
  the connection comes from a trusted proxy; otherwise it is nginx's own.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.conftest import DEV_ID, DEV_SECRET, Server, bearer, free_port, start_server
from tests.e2e.nginx import Nginx, configuration, require_nginx, start_nginx
from tests.e2e.test_mcp_interop import MemoryStorage

pytestmark = pytest.mark.anyio

PUBLIC_HOST = "calc.example.test"
PING_INTERVAL = "30"  # far beyond every wait here: no ping can be what pushes an event out
REAL_TIME = 0.5
SESSION_TIMEOUT = 30.0
NGINX_SOURCE = "127.0.0.2"  # nginx's connections to calcmcp come from here (proxy_bind)
# The same stream with gzip on for event streams and nginx's default buffering: calcmcp's
# `X-Accel-Buffering: no` keeps it flowing; a location that ignores that header holds it back.
GZIP_LOCATIONS = """
    location /gzip/ {
        proxy_pass http://calcmcp/;
        proxy_buffering on;
        gzip on; gzip_types text/event-stream; gzip_min_length 0;
    }
    location /gzip-ignoring-the-header/ {
        proxy_pass http://calcmcp/;
        proxy_buffering on;
        proxy_ignore_headers X-Accel-Buffering;
        gzip on; gzip_types text/event-stream; gzip_min_length 0;
    }
"""


@dataclass
class Stack:
    """calcmcp behind nginx: ``public`` is calcmcp's public URL, at nginx's port."""

    server: Server
    nginx: Nginx
    public: str

    def client(self, *, source: str | None = None, host: str = PUBLIC_HOST) -> httpx.AsyncClient:
        """A client of nginx from address ``source``, sending ``Host: <host>:<nginx port>``."""
        return httpx.AsyncClient(
            base_url=self.nginx.url,
            headers={"Host": f"{host}:{self.nginx.port}"},
            transport=httpx.AsyncHTTPTransport(local_address=source),
            trust_env=False,
            timeout=httpx.Timeout(5.0),
        )

    def audit(self, event: str, count: int) -> list[dict[str, Any]]:
        """The audit log's records of ``event``, once there are ``count`` (audit lines are
        written in batches, up to half a second late), or what there is after 5 s."""
        deadline = time.monotonic() + 5
        while True:
            records = []
            for line in self.server.log.read_text(errors="replace").splitlines():
                if line.startswith("{"):
                    record = json.loads(line)
                    if record.get("event") == event:
                        records.append(record)
            if len(records) >= count or time.monotonic() > deadline:
                return records
            time.sleep(0.05)


@contextmanager
def stack(
    workdir: Path, *, prefix: str = "", bind: str | None = None, extra: str = "", **env: str
) -> Iterator[Stack]:
    """Start calcmcp with settings ``env``, then nginx in front of it."""
    require_nginx()
    port = free_port()
    public = f"http://{PUBLIC_HOST}:{port}{prefix}"
    with ExitStack() as running:
        server = running.enter_context(start_server(workdir / "calcmcp", public_url=public, **env))
        config = configuration(
            workdir / "nginx",
            port=port,
            upstream_port=server.port,
            prefixed=bool(prefix),
            bind=bind,
            extra=extra,
        )
        nginx = running.enter_context(start_nginx(workdir / "nginx", config, port))
        yield Stack(server=server, nginx=nginx, public=public)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """calcmcp at the root of nginx, trusting it, with the gzip locations."""
    with stack(
        tmp_path_factory.mktemp("nginx"),
        bind=NGINX_SOURCE,
        extra=GZIP_LOCATIONS,
        trusted_proxies=NGINX_SOURCE,
        sse_ping_interval=PING_INTERVAL,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def prefixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """calcmcp under ``/calc/`` of nginx."""
    workdir = tmp_path_factory.mktemp("nginx-prefix")
    with stack(workdir, prefix="/calc", sse_ping_interval=PING_INTERVAL) as running:
        yield running


async def token_for(client: httpx.AsyncClient, path: str, resource: str | None = None) -> str:
    """A token with both scopes from ``path`` (``/token`` under the public URL)."""
    form = {
        "grant_type": "client_credentials",
        "client_id": DEV_ID,
        "client_secret": DEV_SECRET,
        "scope": "calculator sse",
        **({"resource": resource} if resource else {}),
    }
    response = await client.post(path, data=form)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


# --- event streams in real time -------------------------------------------------------------


class Arrivals:
    """The blocks of an event stream, each with the time it arrived (decoded if compressed)."""

    def __init__(self) -> None:
        self.blocks: list[tuple[float, bytes]] = []
        self.opened = anyio.Event()
        self.encoding: str | None = None
        self._more = anyio.Event()

    async def follow(self, client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> None:
        """Read the stream at ``path`` until cancelled."""
        async with client.stream("GET", path, headers=headers) as response:
            assert response.status_code == 200, await response.aread()
            self.encoding = response.headers.get("content-encoding")
            buffer = b""
            async for chunk in response.aiter_bytes():
                buffer += chunk
                *blocks, buffer = buffer.split(b"\n\n")
                self.blocks.extend((time.monotonic(), block) for block in blocks)
                self.opened.set()
                self._more.set()
                self._more = anyio.Event()

    def find(self, event_id: str) -> float | None:
        """When the event ``event_id`` arrived, if it did."""
        line = f"id: {event_id}".encode()
        return next((at for at, block in self.blocks if line in block.split(b"\n")), None)

    async def wait_for(self, event_id: str) -> None:
        """Wait until the event ``event_id`` arrives (bound it with a timeout)."""
        while self.find(event_id) is None:
            await self._more.wait()


@pytest.mark.parametrize(
    ("location", "immediate", "encoding"),
    [("/", True, None), ("/gzip/", True, "gzip"), ("/gzip-ignoring-the-header/", False, None)],
    ids=["documented", "gzip-and-buffering-on", "buffering-proxy-control"],
)
async def test_events_come_through_nginx_as_they_are_broadcast(
    proxied: Stack, location: str, immediate: bool, encoding: str | None
) -> None:
    async with proxied.client() as client:
        token = await token_for(client, "/token")
        before = await client.post("/broadcast", json={"message": "before"}, headers=bearer(token))
        # resuming after `before`, the stream has the next event whenever it subscribes
        headers = {**bearer(token), "Last-Event-ID": before.json()["event_id"]}
        arrivals = Arrivals()
        async with anyio.create_task_group() as group:
            group.start_soon(arrivals.follow, client, f"{location}events", headers)
            with anyio.move_on_after(1.0):  # a buffering proxy shows nothing, not even headers
                await arrivals.opened.wait()
            # when it shows the stream, the event comes live, not replayed as it subscribes
            assert arrivals.opened.is_set() == immediate
            sent_at = time.monotonic()
            response = await client.post(
                "/broadcast", json={"message": "now"}, headers=bearer(token)
            )
            event_id = response.json()["event_id"]
            with anyio.move_on_after(1.0):
                await arrivals.wait_for(event_id)
            group.cancel_scope.cancel()
    arrived = arrivals.find(event_id)
    if immediate:
        assert arrived is not None, arrivals.blocks
        assert arrived - sent_at < REAL_TIME
        assert arrivals.encoding == encoding
        assert not [block for _, block in arrivals.blocks if block.startswith(b":")]  # no ping
    else:  # the control: this test does see a proxy that holds the stream back
        assert arrived is None, arrivals.blocks


# --- the public URL in metadata, and MCP's Origin and Host checks -----------------------------


async def test_the_metrics_are_not_served_through_the_proxy(proxied: Stack) -> None:
    async with proxied.client() as http:
        assert (await http.get("/metrics")).status_code == 404
        assert (await http.get("/health/live")).status_code == 200
    async with httpx.AsyncClient(base_url=proxied.server.url, timeout=10) as direct:
        assert (await direct.get("/metrics")).status_code == 200  # on calcmcp's own address


async def test_metadata_fetched_through_nginx_advertises_the_public_url(proxied: Stack) -> None:
    public = proxied.public
    async with proxied.client() as client:
        server = (await client.get("/.well-known/oauth-authorization-server")).json()
        resources = {
            path: (await client.get(f"/.well-known/oauth-protected-resource{path}")).json()
            for path in ("", "/mcp", "/sse")
        }
        challenge = (await client.post("/mcp", json={})).headers["www-authenticate"]
    assert server["issuer"] == public
    assert server["token_endpoint"] == f"{public}/token"
    assert server["jwks_uri"] == f"{public}/.well-known/jwks.json"
    for path, document in resources.items():
        assert document["resource"] == f"{public}{path}"
        assert document["authorization_servers"] == [public]
    assert f'resource_metadata="{public}/.well-known/oauth-protected-resource/mcp"' in challenge


@pytest.mark.parametrize(
    ("host", "origin", "status"),
    [
        (PUBLIC_HOST, None, 401),
        (PUBLIC_HOST, f"http://{PUBLIC_HOST}:{{port}}", 401),
        (PUBLIC_HOST, "http://evil.example.test", 403),
        ("evil.example.test", None, 421),  # DNS rebinding, through the proxy
    ],
)
async def test_the_mcp_checks_accept_the_public_host_and_origin_only(
    proxied: Stack, host: str, origin: str | None, status: int
) -> None:
    headers = {"Origin": origin.format(port=proxied.nginx.port)} if origin else {}
    async with proxied.client(host=host) as client:
        response = await client.post("/mcp", json={}, headers=headers)
    assert response.status_code == status, response.text  # 401: past the checks, to the token


@asynccontextmanager
async def sdk_session(stack: Stack, path: str) -> AsyncIterator[Client]:
    """The official SDK client at ``public + path``, with nginx as its proxy."""
    auth = ClientCredentialsOAuthProvider(
        server_url=stack.public + path,
        storage=MemoryStorage(),
        client_id=DEV_ID,
        client_secret=DEV_SECRET,
        scope="calculator sse",
        issuer=stack.public,
    )
    timeout = httpx2.Timeout(10, read=SESSION_TIMEOUT)

    def http(
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = timeout,
        auth: httpx2.Auth | None = auth,
    ) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            headers=headers, timeout=timeout, auth=auth, proxy=stack.nginx.url, trust_env=False
        )

    with anyio.fail_after(SESSION_TIMEOUT):
        if path.endswith("/sse"):
            transport: Any = sse_client(
                stack.public + path,
                auth=auth,
                timeout=10,
                sse_read_timeout=SESSION_TIMEOUT,
                httpx_client_factory=http,
            )
            async with Client(transport, mode="legacy", cache=None) as client:
                yield client
        else:
            async with http() as client_http:
                transport = streamable_http_client(stack.public + path, http_client=client_http)
                async with Client(transport, mode="auto", cache=None) as client:
                    yield client


async def use_the_calculator(client: Client) -> None:
    """Call a tool and check its answer."""
    answer = await client.call_tool("add", {"a": 0.1, "b": "0.2"})
    assert not answer.is_error, answer
    assert answer.structured_content is not None
    assert answer.structured_content["result"] == 0.3


@pytest.mark.parametrize("path", ["/mcp", "/sse"])
async def test_the_mcp_sdk_client_works_through_nginx(proxied: Stack, path: str) -> None:
    async with sdk_session(proxied, path) as client:
        await use_the_calculator(client)


# --- under a path prefix ----------------------------------------------------------------------


async def test_under_a_prefix_metadata_is_found_where_clients_look(prefixed: Stack) -> None:
    public = prefixed.public  # http://calc.example.test:PORT/calc
    async with prefixed.client() as client:
        # RFC 8414 §3.1 and RFC 9728 §3.1: the path goes after the well-known part
        server = (await client.get("/.well-known/oauth-authorization-server/calc")).json()
        mcp = (await client.get("/.well-known/oauth-protected-resource/calc/mcp")).json()
        # and under the prefix, where the 401 challenge points
        same_server = (await client.get("/calc/.well-known/oauth-authorization-server")).json()
        challenge = (await client.post("/calc/mcp", json={})).headers["www-authenticate"]
    assert server == same_server
    assert server["issuer"] == public
    assert server["token_endpoint"] == f"{public}/token"
    assert mcp["resource"] == f"{public}/mcp"
    assert mcp["authorization_servers"] == [public]
    assert f'resource_metadata="{public}/.well-known/oauth-protected-resource/mcp"' in challenge


async def test_under_a_prefix_the_legacy_endpoint_event_carries_it(prefixed: Stack) -> None:
    async with prefixed.client() as client:
        token = await token_for(client, "/calc/token", resource=f"{prefixed.public}/sse")
        headers = {**bearer(token), "Accept": "text/event-stream"}
        with anyio.fail_after(10):
            async with client.stream("GET", "/calc/sse", headers=headers) as stream:
                assert stream.status_code == 200
                lines = stream.aiter_lines()
                assert await anext(lines) == "event: endpoint"
                endpoint = (await anext(lines)).removeprefix("data: ")
                assert endpoint.startswith("/calc/messages?session_id=")
                ping = {"jsonrpc": "2.0", "id": 7, "method": "ping"}
                posted = await client.post(endpoint, json=ping, headers=bearer(token))
                assert posted.status_code == 202, posted.text
                async for line in lines:
                    if line.startswith("data: "):
                        assert json.loads(line.removeprefix("data: "))["id"] == 7
                        break


@pytest.mark.parametrize("path", ["/mcp", "/sse"])
async def test_under_a_prefix_the_mcp_sdk_client_works(prefixed: Stack, path: str) -> None:
    async with sdk_session(prefixed, path) as client:
        await use_the_calculator(client)


async def test_under_a_prefix_events_come_through(prefixed: Stack) -> None:
    async with prefixed.client() as client:
        token = await token_for(client, "/calc/token")
        arrivals = Arrivals()
        async with anyio.create_task_group() as group:
            group.start_soon(arrivals.follow, client, "/calc/events", bearer(token))
            with anyio.fail_after(5):
                await arrivals.opened.wait()
                sent_at = time.monotonic()
                response = await client.post(
                    "/calc/broadcast", json={"message": "prefixed"}, headers=bearer(token)
                )
                await arrivals.wait_for(response.json()["event_id"])
            group.cancel_scope.cancel()
    arrived = arrivals.find(response.json()["event_id"])
    assert arrived is not None
    assert arrived - sent_at < REAL_TIME


# --- X-Forwarded-For: believed from trusted proxies only --------------------------------------


@pytest.mark.parametrize("trusted", [True, False], ids=["trusted-proxy", "no-trusted-proxy"])
async def test_the_limiter_and_audit_see_the_forwarded_client_only_from_a_trusted_proxy(
    tmp_path: Path, trusted: bool
) -> None:
    # nginx connects from 127.0.0.2 when trusted; else from 127.0.0.1, which uvicorn's own
    # default would trust: calcmcp must not let it
    settings = {
        "trusted_proxies": NGINX_SOURCE if trusted else "",
        "token_burst": "5",  # one failure (cost 5) empties a bucket
        "token_rate": "0.001",
        "log_level": "info",
    }
    with stack(tmp_path, bind=NGINX_SOURCE if trusted else None, **settings) as running:
        spoofed = {"X-Forwarded-For": "203.0.113.9"}  # a client's claim: never believed

        async def attempt(source: str, client_id: str, via: Stack | None = running) -> int:
            form = {"grant_type": "client_credentials", "client_id": client_id}
            form["client_secret"] = "wrong"
            if via is None:  # straight to calcmcp, past nginx
                transport = httpx.AsyncHTTPTransport(local_address=source)
                async with httpx.AsyncClient(transport=transport, trust_env=False) as direct:
                    url = f"{running.server.url}/token"
                    return (await direct.post(url, data=form, headers=spoofed)).status_code
            async with via.client(source=source) as client:
                return (await client.post("/token", data=form, headers=spoofed)).status_code

        statuses = [
            await attempt("127.0.0.3", "nobody-1"),
            await attempt("127.0.0.3", "nobody-2"),  # 127.0.0.3's bucket (or nginx's) is empty
            await attempt("127.0.0.4", "nobody-3"),  # its own bucket, if told apart
            await attempt("127.0.0.5", "nobody-4", via=None),
        ]
        sources = [record["source"] for record in running.audit("token.refused", 4)]
    if trusted:
        assert statuses == [401, 429, 401, 401]
        assert sources == ["127.0.0.3", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
    else:
        assert statuses == [401, 429, 429, 401]
        assert sources == ["127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.5"]
