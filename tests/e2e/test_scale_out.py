"""Several server processes on one Redis act as one service: no sticky sessions anywhere.

Two instances on different ports share the real Redis (a key prefix of this module's own) and one
data directory (so the same signing keys and client-secret key): a broadcast on one reaches the
streams of both, a stream resumes on the other with ``Last-Event-ID``, an MCP session (2025-11-25
and the legacy HTTP+SSE transport) is served by whichever instance a request lands on, a token
revoked on one is refused by the other. A second pair keeps its clients in PostgreSQL and signs
with a shared HS256 secret (what separate hosts would do) under a small ``/token`` burst: a client
made with ``calcmcp clients create`` gets tokens from both, and the burst is one bucket for both.
Last, ``calcmcp serve --workers 2`` on Redis serves the seed walk-through, and is refused without
Redis. Both instances of a pair serve (and sign for) the same public URL.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import asyncpg
import httpx
import pytest
import redis

from tests.e2e.conftest import (
    DEV_ID,
    DEV_SECRET,
    FORM,
    REPO,
    SEED_CALCULATIONS,
    SEED_TOKEN_BODY,
    START_TIMEOUT,
    TIMEOUT,
    EventStreamReader,
    Server,
    bearer,
    broadcast,
    free_port,
    get_token,
    open_stream,
    start_server,
    terminate,
)

pytestmark = pytest.mark.anyio

REDIS_URL = os.environ.get("CALCMCP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get(
    "CALCMCP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PUBLIC = "http://calc.scale.test"  # every instance of a pair serves, and signs for, this URL
PREFIX = f"calcmcp-scale-{uuid.uuid4().hex[:12]}:"  # this module's keys on the shared Redis
ADD = "/calculator/add?a=2&b=3"
MCP_VERSION = "2025-11-25"
BOTH = "application/json, text/event-stream"
ALL_TOOLS = ["add", "subtract", "multiply", "divide", "broadcast"]
REVOCATION_STALENESS = 1.0  # documented: another instance refuses a revoked token within 1 s
REFUSAL_DEADLINE = 2.0
TOKEN_BURST = 10  # the PostgreSQL pair's /token burst: two failures (5 each) empty it
CREDENTIALS = re.compile(r"client_id:\s+(\S+)\nclient_secret:\s+(\S+)\n")
BURST = 200  # streams opened at once on one instance


@pytest.fixture(scope="module", autouse=True)
def _forget_our_keys() -> Iterator[None]:
    """Leave nothing of this module on the shared Redis."""
    yield
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{PREFIX}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@dataclass(frozen=True)
class Pair:
    """Two instances of one service, and the settings they share (names without the prefix)."""

    a: Server
    b: Server
    settings: dict[str, str]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two instances on Redis, sharing one data directory (keys, client-secret key).

    Streams check their token every second, so a revocation reaches them quickly.
    """
    root = tmp_path_factory.mktemp("scale-out")
    shared = {
        "data_dir": str(root / "data"),
        "redis_url": REDIS_URL,
        "redis_prefix": PREFIX,
        "public_url": PUBLIC,
        "sse_auth_check": "1",
        "sse_max_streams_per_client": str(BURST * 2),
    }
    with ExitStack() as stack:
        # one after the other: the first creates the keys the second then reads
        a = stack.enter_context(start_server(root / "a", **shared))
        b = stack.enter_context(start_server(root / "b", **shared))
        yield Pair(a, b, shared)


@pytest.fixture(scope="module")
def pg_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Two instances with data directories of their own: clients in PostgreSQL, a shared
    HS256 secret and client-secret key, and a small ``/token`` burst that barely refills."""
    root = tmp_path_factory.mktemp("scale-out-pg")
    shared = {
        "redis_url": REDIS_URL,
        "redis_prefix": PREFIX + "pg:",
        "public_url": PUBLIC,
        "database_url": DATABASE_URL,
        "client_secret_key": secrets.token_hex(32),
        "jwt_algorithm": "HS256",
        "jwt_secret": secrets.token_hex(32),
        "token_burst": str(TOKEN_BURST),
        "token_rate": "0.001",
    }
    with ExitStack() as stack:
        a = stack.enter_context(start_server(root / "a", **shared))
        b = stack.enter_context(start_server(root / "b", **shared))
        yield Pair(a, b, shared)


@asynccontextmanager
async def clients(
    pair: Pair, *, source: str | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """An HTTP client for each instance (from the loopback address ``source``, if given)."""
    transports = [httpx.AsyncHTTPTransport(local_address=source) if source else None] * 2
    async with (
        httpx.AsyncClient(base_url=pair.a.url, timeout=TIMEOUT, transport=transports[0]) as a,
        httpx.AsyncClient(base_url=pair.b.url, timeout=TIMEOUT, transport=transports[1]) as b,
    ):
        yield a, b


async def mcp_token(client: httpx.AsyncClient, endpoint: str) -> str:
    """A token of the development client for the MCP endpoint ``endpoint`` (``mcp``, ``sse``)."""
    form = {
        "grant_type": "client_credentials",
        "client_id": DEV_ID,
        "client_secret": DEV_SECRET,
        "resource": f"{PUBLIC}/{endpoint}",
    }
    response = await client.post("/token", data=form)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def rpc(method: str, params: dict[str, Any] | None = None, request_id: int | None = 1) -> Any:
    """A JSON-RPC request (a notification without ``request_id``)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if request_id is not None:
        message["id"] = request_id
    return message


def result_of(response: httpx.Response, request_id: int) -> Any:
    """The ``result`` of a JSON answer to request ``request_id``."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    answer = response.json()
    assert answer["id"] == request_id, answer
    assert "error" not in answer, answer
    return answer["result"]


# --- events -------------------------------------------------------------------------------


async def test_a_broadcast_on_either_instance_reaches_the_streams_of_both(pair: Pair) -> None:
    async with clients(pair) as (a, b):
        token = await get_token(a)
        only = {"types": "broadcast"}
        async with (
            open_stream(a, token, params=only) as on_a,
            open_stream(b, token, params=only) as on_b,
        ):
            for sender, name in ((a, "A"), (b, "B")):
                event_id = await broadcast(sender, token, f"hello from {name}")
                for stream in (on_a, on_b):
                    event = await stream.next_fields()
                    assert (event.id, event.event) == (event_id, "broadcast")
                    assert event.data["message"] == f"hello from {name}"


async def test_a_subscriber_resumes_on_the_other_instance_with_exactly_the_missed_events(
    pair: Pair,
) -> None:
    async with clients(pair) as (a, b):
        token = await get_token(a)
        only = {"types": "broadcast"}
        async with open_stream(a, token, params=only) as on_a:
            last_seen = await broadcast(a, token, "before leaving")
            assert (await on_a.next_fields()).id == last_seen

        missed = [
            (await broadcast((a, b)[n % 2], token, f"missed {n}"), f"missed {n}") for n in range(5)
        ]

        resume = {"Last-Event-ID": last_seen}
        async with open_stream(b, token, params=only, headers=resume) as on_b:
            replayed = [await on_b.next_fields() for _ in missed]
            assert [(e.id, e.event, e.data["message"]) for e in replayed] == [
                (event_id, "broadcast", message) for event_id, message in missed
            ]
            # nothing else was queued before the live edge: the next event is the next broadcast
            live = await broadcast(a, token, "back again")
            after = await on_b.next_fields()
            assert (after.id, after.data["message"]) == (live, "back again")


async def open_raw_stream(port: int, token: str) -> tuple[int, anyio.abc.SocketStream]:
    """``GET /events`` on a connection of its own; the status, and the open connection."""
    connection = await anyio.connect_tcp("127.0.0.1", port)
    await connection.send(
        f"GET /events?types=broadcast HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n" not in head:
        head += await connection.receive()
    return int(head.split()[1]), connection


async def test_a_burst_of_streams_opened_at_once_on_one_instance_is_served(pair: Pair) -> None:
    async with clients(pair) as (a, _):
        token = await get_token(a)  # B has never checked it: nothing cached there
    opened: list[tuple[int, anyio.abc.SocketStream]] = []

    async def open_one() -> None:
        opened.append(await open_raw_stream(pair.b.port, token))

    try:
        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                for _ in range(BURST):
                    group.start_soon(open_one)
        statuses = Counter(status for status, _ in opened)
    finally:
        for _, connection in opened:
            await connection.aclose()
    assert statuses == Counter({200: BURST})


# --- MCP: any instance serves any session --------------------------------------------------


async def test_a_2025_session_is_served_by_both_instances_alternately(pair: Pair) -> None:
    async with clients(pair) as (a, b):
        token = await mcp_token(a, "mcp")
        auth = {**bearer(token), "Accept": BOTH}
        params = {
            "protocolVersion": MCP_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "scale-test", "version": "1"},
        }
        opened = await a.post("/mcp", json=rpc("initialize", params, 0), headers=auth)
        assert result_of(opened, 0)["protocolVersion"] == MCP_VERSION
        session = {
            **auth,
            "Mcp-Session-Id": opened.headers["mcp-session-id"],
            "MCP-Protocol-Version": MCP_VERSION,
        }

        initialized = await b.post(
            "/mcp", json=rpc("notifications/initialized", request_id=None), headers=session
        )
        assert initialized.status_code == 202
        listed = result_of(
            await b.post("/mcp", json=rpc("tools/list", request_id=1), headers=session), 1
        )
        assert [tool["name"] for tool in listed["tools"]] == ALL_TOOLS
        calls = [
            (a, "add", {"a": "0.1", "b": "0.2"}, 0.3),
            (b, "multiply", {"a": 6, "b": 7}, 42),
            (a, "divide", {"a": 1, "b": 4}, 0.25),
            (b, "subtract", {"a": 10, "b": 4}, 6),
        ]
        for n, (instance, name, arguments, expected) in enumerate(calls, start=2):
            body = rpc("tools/call", {"name": name, "arguments": arguments}, n)
            answer = result_of(await instance.post("/mcp", json=body, headers=session), n)
            assert answer.get("isError") is not True, answer
            assert answer["structuredContent"]["result"] == expected
        # the calculations done on A are in the shared log that B reads
        read = rpc("resources/read", {"uri": "calc://events/recent"}, 9)
        contents = result_of(await b.post("/mcp", json=read, headers=session), 9)["contents"]
        recent = json.loads(contents[0]["text"])
        assert any(e.get("operation") == "add" and e.get("result") == 0.3 for e in recent)
        assert any(e.get("operation") == "divide" and e.get("result") == 0.25 for e in recent)

        # ended on B, gone on A
        assert (await b.delete("/mcp", headers=session)).status_code in (200, 204)
        after = await a.post("/mcp", json=rpc("ping", request_id=10), headers=session)
        assert after.status_code == 404
        assert after.json()["error"]["code"] == -32600


async def test_a_legacy_sse_session_answers_on_the_stream_whichever_instance_is_posted_to(
    pair: Pair,
) -> None:
    async with clients(pair) as (a, b):
        token = await mcp_token(a, "sse")
        headers = {**bearer(token), "Accept": "text/event-stream"}
        async with a.stream("GET", "/sse", headers=headers) as response:
            assert response.status_code == 200
            stream = EventStreamReader(response)
            endpoint = await stream.next_fields()
            assert endpoint.event == "endpoint"
            path = endpoint.one("data")
            assert path is not None
            assert path.startswith("/messages?session_id=")

            async def post(instance: httpx.AsyncClient, message: Any) -> Any:
                posted = await instance.post(path, json=message, headers=bearer(token))
                assert posted.status_code == 202, posted.text
                if "id" not in message:
                    return None
                answer = await stream.next_fields()
                assert answer.event == "message"
                reply = answer.data
                assert reply["id"] == message["id"], reply
                assert "error" not in reply, reply
                return reply["result"]

            params = {"protocolVersion": MCP_VERSION, "capabilities": {}}
            assert "protocolVersion" in await post(b, rpc("initialize", params, 0))
            await post(b, rpc("notifications/initialized", request_id=None))
            listed = await post(b, rpc("tools/list", request_id=1))
            assert [tool["name"] for tool in listed["tools"]] == ALL_TOOLS
            added = await post(
                b, rpc("tools/call", {"name": "add", "arguments": {"a": 5, "b": 3}}, 2)
            )
            assert added["structuredContent"]["result"] == 8
            multiplied = await post(
                a, rpc("tools/call", {"name": "multiply", "arguments": {"a": 6, "b": 7}}, 3)
            )
            assert multiplied["structuredContent"]["result"] == 42

        # the stream has ended, and with it the session, on every instance
        with anyio.fail_after(5):
            while True:
                gone = await b.post(path, json=rpc("ping", request_id=4), headers=bearer(token))
                if gone.status_code == 404:
                    break
                await anyio.sleep(0.05)


# --- revocation ------------------------------------------------------------------------------


async def test_a_token_revoked_on_one_instance_is_refused_by_the_other_within_a_second(
    pair: Pair,
) -> None:
    async with clients(pair) as (a, b):
        token = await get_token(a)
        # B has seen the token, and remembers "not revoked" for up to a second
        assert (await b.post(ADD, headers=bearer(token))).status_code == 200
        async with open_stream(b, token, params={"types": "broadcast"}) as on_b:
            revoked = await a.post("/revoke", data={"token": token}, auth=(DEV_ID, DEV_SECRET))
            assert revoked.status_code == 200, revoked.text
            started = time.monotonic()
            assert (await a.post(ADD, headers=bearer(token))).status_code == 401

            statuses = []
            while time.monotonic() - started < REFUSAL_DEADLINE:
                statuses.append((await b.post(ADD, headers=bearer(token))).status_code)
                if statuses[-1] == 401:
                    break
                await anyio.sleep(0.05)
            refused_after = time.monotonic() - started
            assert statuses[-1] == 401, f"B still accepts it after {REFUSAL_DEADLINE} s"
            assert set(statuses) <= {200, 401}
            assert refused_after <= REVOCATION_STALENESS + 0.5
            refusal = await b.post(ADD, headers=bearer(token))
            assert refusal.status_code == 401
            assert 'error="invalid_token"' in refusal.headers["www-authenticate"]

            # the stream B holds for it ends too (its token is checked every second)
            end = await on_b.next_fields(timeout=5)
            assert end.event == "end"
            assert end.id is None
            assert end.data["reason"] == "revoked"
            assert await on_b.next_block() is None


# --- clients in PostgreSQL, a shared rate limit ---------------------------------------------


def cli(workdir: Path, settings: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m src *args`` as an operator runs it, with the instances' ``settings``."""
    workdir.mkdir(parents=True, exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALCMCP_")}
    environ.update({f"CALCMCP_{name.upper()}": value for name, value in settings.items()})
    environ.update(PYTHONPATH=str(REPO), CALCMCP_DATA_DIR=str(workdir / "data"))
    return subprocess.run(
        [sys.executable, "-m", "src", *args],
        cwd=workdir,
        env=environ,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


async def delete_client(client_id: str) -> None:
    connection = await asyncpg.connect(DATABASE_URL, timeout=5)
    try:
        await connection.execute("DELETE FROM public.clients WHERE client_id = $1", client_id)
    finally:
        await connection.close()


async def test_a_client_made_on_postgresql_gets_tokens_from_both_instances(
    pg_pair: Pair, tmp_path: Path
) -> None:
    client_id = f"scale-{uuid.uuid4().hex[:12]}"
    settings = pg_pair.settings
    created = cli(
        tmp_path, settings, "clients", "create", "--scope", "calculator", "--id", client_id
    )
    try:
        assert created.returncode == 0, created.stdout + created.stderr
        match = CREDENTIALS.search(created.stdout)
        assert match is not None, created.stdout
        assert match.group(1) == client_id
        secret = match.group(2)
        listed = cli(tmp_path, settings, "clients", "list")
        assert listed.returncode == 0, listed.stderr
        assert client_id in listed.stdout

        async with clients(pg_pair) as (a, b):
            tokens = []
            for instance in (a, b):
                response = await instance.post(
                    "/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
                )
                assert response.status_code == 200, response.text
                assert response.json()["scope"] == "calculator"
                tokens.append(response.json()["access_token"])
            # signed with the shared secret: each instance accepts the other's tokens
            for instance, token in ((b, tokens[0]), (a, tokens[1])):
                answer = await instance.post(ADD, headers=bearer(token))
                assert answer.status_code == 200, answer.text
                assert answer.json()["result"] == 5

            disabled = cli(tmp_path, settings, "clients", "disable", client_id)
            assert disabled.returncode == 0, disabled.stderr
            refused = await a.post(
                "/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
            )
            assert refused.status_code == 401
            assert refused.json()["error"] == "invalid_client"
    finally:
        await delete_client(client_id)


async def test_the_token_rate_limit_is_one_bucket_for_both_instances(pg_pair: Pair) -> None:
    # from an address of its own: its bucket is fresh whatever else used this pair
    async with clients(pg_pair, source="127.0.0.2") as (a, b):
        form = {
            "grant_type": "client_credentials",
            "client_id": f"nobody-{uuid.uuid4().hex[:8]}",
            "client_secret": "wrong",
        }
        statuses = [
            (await instance.post("/token", data=form)).status_code for instance in (a, b, a)
        ]
        # each failure costs 5 of the address's 10: two empty it, wherever they were made
        assert statuses == [401, 401, 429]
        slow_down = await b.post("/token", data=form)
        assert slow_down.status_code == 429
        assert slow_down.json()["error"] == "slow_down"
        assert int(slow_down.headers["retry-after"]) >= 1
        # and the right secret from that address is held back too, on either instance
        good = {**form, "client_id": DEV_ID, "client_secret": DEV_SECRET}
        assert (await a.post("/token", data=good)).status_code == 429


# --- calcmcp serve --workers -----------------------------------------------------------------


def serve_workers(workdir: Path, workers: int, **env: str) -> subprocess.Popen[bytes]:
    """``python -m src serve --workers N`` on a free port, in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALCMCP_")}
    environ.update(
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
        CALCMCP_DATA_DIR=str(workdir / "data"),
        CALCMCP_LOG_LEVEL="warning",
        CALCMCP_TOKEN_RATE="1000",
        CALCMCP_TOKEN_BURST="1000",
    )
    environ.update({f"CALCMCP_{name.upper()}": value for name, value in env.items()})
    port = env["port"]
    with (workdir / "server.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "src", "serve", "--workers", str(workers), "--port", port],
            cwd=workdir,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def children(pid: int) -> list[int]:
    """The uvicorn workers ``pid`` started (not multiprocessing's resource tracker)."""
    try:
        listed = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    workers = []
    for child in map(int, listed):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            workers.append(child)
    return workers


def worker_holding(server_port: int, client_port: int, workers: list[int]) -> int | None:
    """Which worker holds the server side of the loopback connection from ``client_port``."""
    wanted = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (fields[1], fields[2]) == wanted:
            inode = fields[9]
    if inode is None:
        return None
    for worker in workers:
        for fd in Path(f"/proc/{worker}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return worker
            except OSError:
                continue
    return None


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``calcmcp serve --workers 2`` on Redis, once both workers answer; stopped afterwards."""
    port = free_port()
    process = serve_workers(
        tmp_path, 2, port=str(port), redis_url=REDIS_URL, redis_prefix=PREFIX + "workers:"
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=httpx.Timeout(1.0)) as probe:
            while True:
                assert process.poll() is None, (tmp_path / "server.log").read_text()
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                try:
                    up = probe.get(f"http://127.0.0.1:{port}/").status_code == 200
                except httpx.TransportError:
                    up = False
                if up and len(children(process.pid)) == 2:
                    break
                time.sleep(0.05)
        yield process, port
    finally:
        workers = children(process.pid)
        terminate(process, grace=10)
        for worker in workers:  # the supervisor stops its workers; none may outlive the test
            assert not Path(f"/proc/{worker}").exists() or _zombie(worker), f"worker {worker} left"


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


async def test_serve_with_two_workers_on_redis_serves_the_seed_walk_through(
    two_workers: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, port = two_workers
    workers = children(process.pid)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=TIMEOUT) as http:
        granted = await http.post("/token", content=SEED_TOKEN_BODY, headers=FORM)
        assert granted.status_code == 200, granted.text
        token = granted.json()["access_token"]
        for path, body in SEED_CALCULATIONS:
            response = await http.post(path, headers=bearer(token))
            assert (response.status_code, response.content) == (200, body), path

        # streams until each worker holds at least one (the kernel spreads the connections)
        async with AsyncExitStack() as stack:
            streams: list[EventStreamReader] = []
            holders: set[int | None] = set()
            while holders != set(workers):
                assert len(streams) < 24, f"every stream landed on one worker: {holders}"
                stream = await stack.enter_async_context(
                    open_stream(http, token, params={"types": "broadcast"})
                )
                local = stream.response.extensions["network_stream"].get_extra_info("client_addr")
                holders.add(worker_holding(port, local[1], workers))
                streams.append(stream)
            sent = await http.post("/broadcast?message=Hello%20World", headers=bearer(token))
            assert sent.status_code == 200, sent.text
            receipt = sent.json()
            assert receipt == {"status": "Message broadcast", "event_id": receipt["event_id"]}
            for stream in streams:
                event = await stream.next_fields()
                assert (event.id, event.event) == (receipt["event_id"], "broadcast")
                assert event.data["message"] == "Hello World"


def listening(port: int) -> int:
    """How many sockets listen on loopback ``port`` (one per worker with ``SO_REUSEPORT``)."""
    local = f"0100007F:{port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1] == local and row.split()[3] == "0A")


def test_serve_with_two_workers_spreads_a_burst_of_connections_over_both(
    two_workers: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, port = two_workers
    workers = children(process.pid)
    deadline = time.monotonic() + START_TIMEOUT
    while listening(port) < 2:  # each worker listens on a socket of its own
        assert time.monotonic() < deadline, f"{listening(port)} worker(s) listening"
        time.sleep(0.05)
    # opened all at once, as a load balancer's pool is: with one socket shared by the workers,
    # the first to wake accepted nearly all of them
    connections = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(40)]
    try:
        for connection in connections:
            connection.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        for connection in connections:
            assert connection.recv(12) == b"HTTP/1.1 200"
        held = Counter(
            worker_holding(port, connection.getsockname()[1], workers) for connection in connections
        )
    finally:
        for connection in connections:
            connection.close()
    assert set(held) == set(workers), held
    assert min(held.values()) >= 8, held  # by the addresses' hash: 20 each, give or take


def test_serve_with_two_workers_is_refused_without_redis(tmp_path: Path) -> None:
    process = serve_workers(tmp_path, 2, port=str(free_port()))
    try:
        code = process.wait(timeout=START_TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    output = (tmp_path / "server.log").read_text()
    assert code != 0
    assert "--workers" in output
    assert "CALCMCP_REDIS_URL" in output
    assert "Traceback" not in output
