"""The seed README's walk-through against the real server process, plus oversized requests."""

from __future__ import annotations

import asyncio
import datetime
import re
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.e2e.conftest import (
    DEV_ID,
    FORM,
    SEED_CALCULATIONS,
    SEED_TOKEN_BODY,
    Server,
    bearer,
    open_stream,
)

pytestmark = pytest.mark.anyio

EVENT_ID = re.compile(r"\d+-\d+")


async def test_the_seed_readme_flow(http: httpx.AsyncClient) -> None:
    # curl -X POST /token -d "grant_type=...&scope=calculator+sse"
    response = await http.post("/token", content=SEED_TOKEN_BODY, headers=FORM)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    grant = response.json()
    assert grant == {
        "access_token": grant["access_token"],
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "calculator sse",
    }
    token = grant["access_token"]

    # the four calculator curls
    for path, body in SEED_CALCULATIONS:
        response = await http.post(path, headers=bearer(token))
        assert response.status_code == 200, path
        assert response.headers["content-type"] == "application/json"
        assert response.content == body

    # subscribe, then curl -X POST "/broadcast?message=Hello%20World"
    async with open_stream(http, token) as stream:
        sent_at = time.time()
        response = await http.post("/broadcast?message=Hello%20World", headers=bearer(token))
        assert response.status_code == 200
        receipt = response.json()
        assert receipt == {"status": "Message broadcast", "event_id": receipt["event_id"]}
        assert EVENT_ID.fullmatch(receipt["event_id"])

        event = await stream.next_event()

    assert event.lines[:2] == [f"id: {receipt['event_id']}".encode(), b"event: broadcast"]
    assert len(event.lines) == 3
    data = event.data
    assert data == {
        "type": "broadcast",
        "message": "Hello World",
        "sender": DEV_ID,
        "occurred_at": data["occurred_at"],
    }
    occurred = datetime.datetime.fromisoformat(data["occurred_at"]).timestamp()
    assert abs(occurred - sent_at) < 5


async def test_http_basic_token_request_works_on_the_wire(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/token",
        data={"grant_type": "client_credentials"},
        auth=("example_client_id", "example_client_secret"),
    )

    assert response.status_code == 200
    assert response.json()["scope"] == "calculator sse"


async def test_a_one_megabyte_token_request_is_refused_with_413(http: httpx.AsyncClient) -> None:
    body = SEED_TOKEN_BODY + b"&padding=" + b"x" * 1_000_000

    response = await http.post("/token", content=body, headers=FORM)

    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_chunked_one_megabyte_token_request_is_refused_with_413(
    http: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[
        bytes
    ]:  # no Content-Length: the server must count as it reads
        yield SEED_TOKEN_BODY
        for _ in range(16):
            yield b"x" * 65_536

    try:
        response = await http.post("/token", content=chunks(), headers=FORM)
    except httpx.WriteError:  # the server answered and closed before the whole body was sent
        return
    assert response.status_code == 413


async def test_a_100_kb_query_operand_is_refused_without_a_5xx(server: Server) -> None:
    # httpx refuses URLs over 64 kB, so this request is written on a raw socket
    request = (
        f"POST /calculator/add?a={'9' * 100_000}&b=1 HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{server.port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    ).encode()

    started = time.monotonic()
    async with asyncio.timeout(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
        finally:
            writer.close()

    status = int(status_line.split()[1])
    assert status in (400, 401, 413, 414, 431), status_line
    assert time.monotonic() - started < 2.0
