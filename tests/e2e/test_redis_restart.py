"""The real server on a Redis of the test's own, restarted while a client is streaming.

Each test starts a private redis-server on a free port (never the shared one), a calcmcp server
on it, opens an event stream and stops Redis under it. While Redis is away nothing is
acknowledged: every endpoint that needs it answers 503 with ``Retry-After`` and a problem body
(never a 500, never a 200 for an event that was not kept). When Redis is back the server
recovers by itself, and a client resuming with its ``Last-Event-ID`` gets every event
acknowledged after the restart; with an append-only file, also those acknowledged before it
that it had not seen. Every wait is bounded.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.contracts.redis_support import RedisServer
from tests.e2e.conftest import (
    DEV_ID,
    DEV_SECRET,
    TIMEOUT,
    Block,
    Server,
    bearer,
    broadcast,
    get_token,
    open_stream,
    start_server,
)

pytestmark = pytest.mark.anyio

RECOVERY = 15.0  # seconds the server may take to notice Redis is back (back-off capped at 2 s)
TOKEN_FORM = {
    "grant_type": "client_credentials",
    "client_id": DEV_ID,
    "client_secret": DEV_SECRET,
    "scope": "calculator sse",
}
ONLY_BROADCASTS = {"types": "broadcast"}


@pytest.fixture(params=[False, True], ids=["in-memory-redis", "append-only-redis"])
def redis_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own: keeping nothing across restarts, or an append-only file."""
    directory = tmp_path / "redis"
    directory.mkdir()
    running = RedisServer(directory, persist=request.param)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def server(redis_server: RedisServer, tmp_path: Path) -> Iterator[Server]:
    """calcmcp on that Redis."""
    with start_server(
        tmp_path / "server", redis_url=redis_server.url, redis_prefix=f"restart-{uuid.uuid4().hex}:"
    ) as running:
        yield running


def persistent(redis: RedisServer) -> bool:
    return bool(redis._persist)


def assert_unavailable(response: httpx.Response) -> None:
    """503, when to come back, and a problem body saying what is missing."""
    assert response.status_code == 503, (response.status_code, response.text)
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 503
    assert problem["type"] == "urn:calcmcp:problem:service-unavailable"
    assert "unavailable" in problem["detail"]


async def mcp_token(http: httpx.AsyncClient, server: Server) -> str:
    """A token for the server's MCP endpoint (its default public URL is localhost's)."""
    form = {**TOKEN_FORM, "resource": f"http://localhost:{server.port}/mcp"}
    response = await http.post("/token", data=form)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def call_add_over_mcp(http: httpx.AsyncClient, token: str) -> httpx.Response:
    """A stateless (2026-07-28) MCP ``tools/call`` of add: it records a calculation event."""
    version = "2026-07-28"
    meta = {
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "add", "arguments": {"a": 1, "b": 2}, "_meta": meta},
    }
    headers = {
        **bearer(token),
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": version,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "add",
    }
    return await http.post("/mcp", json=body, headers=headers)


async def acknowledged_after_recovery(http: httpx.AsyncClient, token: str, message: str) -> str:
    """Broadcast as a client told 503 does: again until acknowledged; its event id.

    Every refusal on the way must be a 503 (the others would be bugs)."""
    deadline = time.monotonic() + RECOVERY
    while True:
        response = await http.post("/broadcast", json={"message": message}, headers=bearer(token))
        if response.status_code == 200:
            event_id: str = response.json()["event_id"]
            return event_id
        assert_unavailable(response)
        assert time.monotonic() < deadline, f"not recovered after {RECOVERY} s"
        await anyio.sleep(0.1)


async def resumed(
    http: httpx.AsyncClient, token: str, last_event_id: str, count: int
) -> tuple[list[Block], list[Block]]:
    """Reconnect with ``last_event_id`` as an EventSource does, again while the stream ends
    ``unavailable`` at once; the notices before the first event, and ``count`` events, which
    must be all there is (a live broadcast comes next)."""
    deadline = time.monotonic() + RECOVERY
    headers = {"Last-Event-ID": last_event_id}
    while True:
        async with open_stream(http, token, params=ONLY_BROADCASTS, headers=headers) as stream:
            notices: list[Block] = []
            block = await stream.next_fields()
            while block.id is None and block.event == "reset":
                notices.append(block)
                block = await stream.next_fields()
            if block.event == "end":
                assert block.data["reason"] == "unavailable", block.data
                assert time.monotonic() < deadline, "the event stream did not come back"
                await anyio.sleep(0.2)
                continue
            events = [block]
            while len(events) < count:
                events.append(await stream.next_fields())
            # and nothing more was queued: the next event is a live one
            live = await broadcast(http, token, "live")
            assert (await stream.next_fields()).id == live
            return notices, events


async def test_a_redis_restart_ends_streams_refuses_writes_and_loses_nothing_acknowledged(
    redis_server: RedisServer, server: Server
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as http:
        token = await get_token(http)
        mcp = await mcp_token(http, server)
        async with open_stream(http, token, params=ONLY_BROADCASTS) as stream:
            seen = await broadcast(http, token, "seen")
            assert (await stream.next_fields()).id == seen
            # acknowledged, but lost in flight as far as the client knows
            unseen = await broadcast(http, token, "unseen")
            assert (await stream.next_fields()).id == unseen

            warm = await call_add_over_mcp(http, mcp)  # its token is known "not revoked" for 1 s
            assert warm.status_code == 200, warm.text

            redis_server.stop()
            # within that second the requests get past authentication and fail where they
            # write (later ones fail at the revocation check: 503 all the same)
            assert_unavailable(
                await http.post("/broadcast", json={"message": "lost"}, headers=bearer(token))
            )
            assert_unavailable(await call_add_over_mcp(http, mcp))
            # the stream ends: an 'end' notice saying why and that a retry is welcome, or the
            # connection simply closes
            with anyio.fail_after(10):
                block = await stream.next_block(10)
                while block is not None and not block.fields:  # a keep-alive comment
                    block = await stream.next_block(10)
            if block is not None:
                assert (block.event, block.id) == ("end", None)
                assert block.data["reason"] == "unavailable"
                assert block.data["retry"] is True
                assert await stream.next_block() is None

        # while Redis is away: 503 with Retry-After everywhere it is needed, nothing acknowledged
        for _ in range(2):  # the second after any cached "not revoked" answer has lapsed
            assert_unavailable(
                await http.post("/broadcast", json={"message": "lost"}, headers=bearer(token))
            )
            assert_unavailable(await http.post("/calculator/add?a=1&b=2", headers=bearer(token)))
            token_response = await http.post("/token", data=TOKEN_FORM)
            assert_unavailable(token_response)
            headers = {**bearer(token), "Accept": "text/event-stream"}
            async with http.stream("GET", "/events", headers=headers) as refused:
                await refused.aread()
                assert_unavailable(refused)
            assert_unavailable(await call_add_over_mcp(http, mcp))
            await anyio.sleep(1.1)

        redis_server.start()
        after = [await acknowledged_after_recovery(http, token, "after 0")]
        after.append(await broadcast(http, token, "after 1"))
        assert (await http.post("/token", data=TOKEN_FORM)).status_code == 200
        answer = await call_add_over_mcp(http, mcp)
        assert answer.status_code == 200, answer.text
        assert answer.json()["result"]["structuredContent"]["result"] == 3

        notices, events = await resumed(
            http, token, seen, count=3 if persistent(redis_server) else 2
        )
        ids = [event.id for event in events]
        if persistent(redis_server):
            # the append-only file kept what was acknowledged before the restart
            assert notices == []
            assert ids == [unseen, *after]
        else:
            # that Redis lost what it held: the client is told so, then gets all there is
            assert [(n.event, n.data["reason"]) for n in notices] == [("reset", "gap")]
            assert ids == after
        assert [e.data["message"] for e in events][-2:] == ["after 0", "after 1"]
