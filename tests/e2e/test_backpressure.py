"""A subscriber that stops reading while 10,000 events are broadcast, on the real server.

The others get every event, in order and in time; the slow one is cut off (``event: end``,
reason ``overflow``, which it reads once it reads again); and the server's memory does not grow
with what the slow one failed to read (VmRSS of the server process before and after).
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest

from tests.e2e.conftest import TIMEOUT, Server, bearer, get_token

pytestmark = pytest.mark.anyio

EVENTS = 10_000
WARM_UP = 1_500  # fills the frame cache and the replay log, so their growth is not measured
MESSAGE = "m" * 2000  # 10,000 of them: about 21 MB down each stream
LOG_SIZE = 500
RSS_GROWTH_LIMIT_KIB = 8 * 1024  # far below what one stream's backlog would take (~21 MB)
DEADLINE = 90.0
ID = re.compile(rb"\nid: ([0-9]+-[0-9]+)\n")
EVENT_ID = re.compile(rb'"event_id":"([0-9]+-[0-9]+)"')


def rss_kib(pid: int) -> int:
    """The resident memory of process ``pid`` (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Reader:
    """Follows a stream with httpx, collecting event ids (a lean parser: 20 MB must go fast)."""

    def __init__(self) -> None:
        self.ids: list[bytes] = []
        self.ready = anyio.Event()

    async def follow(self, client: httpx.AsyncClient, token: str, until: int) -> None:
        headers = {**bearer(token), "Accept": "text/event-stream"}
        async with client.stream("GET", "/events", headers=headers) as response:
            assert response.status_code == 200
            self.ready.set()
            tail = b""
            async for chunk in response.aiter_raw():
                data = tail + chunk
                cut = data.rfind(b"\n\n")  # ids of whole events only: the rest comes again
                if cut < 0:
                    tail = data
                    continue
                self.ids.extend(match.group(1) for match in ID.finditer(data, 0, cut + 1))
                tail = data[cut + 1 :]
                if len(self.ids) >= until:
                    return


async def publish(port: int, token: str, count: int) -> list[bytes]:
    """``count`` broadcasts, pipelined on one connection; their event ids in order."""
    body = b'{"message": "%s"}' % MESSAGE.encode()
    request = (
        b"POST /broadcast HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s"
        % (token.encode(), len(body), body)
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ids: list[bytes] = []
    buffer = b""
    try:
        for start in range(0, count, 100):
            batch = min(100, count - start)
            writer.write(request * batch)
            await writer.drain()
            wanted = start + batch
            while len(ids) < wanted:
                chunk = await reader.read(65536)
                assert chunk, "the server closed the broadcasting connection"
                buffer += chunk
                cut = buffer.rfind(b"}")
                ids.extend(match.group(1) for match in EVENT_ID.finditer(buffer[: cut + 1]))
                buffer = buffer[cut + 1 :]
    finally:
        writer.close()
    return ids


async def open_slow(port: int, token: str) -> socket.socket:
    """A subscriber with a small receive buffer that reads its response head, then stops."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    request = (
        f"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    )
    await loop.sock_sendall(sock, request.encode())
    head = b""
    while b"retry: " not in head:
        head += await loop.sock_recv(sock, 4096)
    assert head.startswith(b"HTTP/1.1 200 "), head[:200]
    return sock


async def read_to_end(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the stream (the chunked body's end)."""
    loop = asyncio.get_running_loop()
    received = bytearray()
    while not received.endswith(b"\r\n0\r\n\r\n"):
        chunk = await loop.sock_recv(sock, 1 << 20)
        if not chunk:
            break
        received += chunk
    return bytes(received)


async def test_a_stalled_subscriber_is_cut_off_without_slowing_the_others_or_growing_memory(
    launch: Callable[..., Server],
) -> None:
    server = launch(event_log_size=str(LOG_SIZE))
    readers = [Reader(), Reader()]
    with anyio.fail_after(DEADLINE):
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as client:
            token = await get_token(client)
            async with anyio.create_task_group() as group:
                for reader in readers:
                    group.start_soon(reader.follow, client, token, WARM_UP + EVENTS)
                for reader in readers:
                    await reader.ready.wait()
                await publish(server.port, token, WARM_UP)
                slow = await open_slow(server.port, token)
                before = rss_kib(server.process.pid)
                started = time.monotonic()
                published = await publish(server.port, token, EVENTS)
                posted = time.monotonic()
            delivered = time.monotonic()
            after = rss_kib(server.process.pid)
            leftovers = await read_to_end(slow)
            slow.close()

    for reader in readers:  # every event, once, in order
        assert reader.ids[WARM_UP:] == published
    assert delivered - posted < 5.0, (
        f"the others got the last event {delivered - posted:.1f} s late"
    )
    assert after - before < RSS_GROWTH_LIMIT_KIB, f"RSS grew {after - before} KiB"
    ends = re.findall(rb"event: end\ndata: (\{[^\n]*\})\n\n", leftovers)
    assert len(ends) == 1, leftovers[-500:]
    assert b'"reason":"overflow"' in ends[0]
    assert "Traceback" not in server.output()  # a stalled write is waited for, not crashed on
    got = leftovers.count(b"\nid: ")
    assert got < EVENTS  # it was cut off, not handed everything
    print(
        f"10,000 events in {posted - started:.1f} s; RSS {before} -> {after} KiB; the slow "
        f"subscriber got {got} events then its end"
    )
