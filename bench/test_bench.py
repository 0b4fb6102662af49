"""Self-tests of the benchmark harness (no wrk, no real server needed).

Run: `.venv/bin/python -m pytest bench/test_bench.py -q` from the repository root.
"""

# ruff: noqa: S101

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
from report import ratio_table, ratios, values_table
from sse_fanout import FanoutError, Options, Subscriber, Tracker, marker_pattern, run_fanout
from targets import Target
from wrkbench import parse_wrk_output

WRK_OUTPUT = """\
Running 1s test @ http://127.0.0.1:18232/nope
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   774.64us  322.85us   6.16ms   82.64%
    Req/Sec    10.53k     1.24k   11.76k    90.91%
  Latency Distribution
     50%  618.00us
     75%    0.95ms
     90%    1.19ms
     99%    1.02s
  11517 requests in 1.10s, 1.89MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:  10471.59
Transfer/sec:      1.72MB
"""


def test_parse_wrk_output_reads_rate_percentiles_and_errors() -> None:
    result = parse_wrk_output(WRK_OUTPUT)
    assert result.rps == pytest.approx(10471.59)
    assert result.p50_ms == pytest.approx(0.618)
    assert result.p99_ms == pytest.approx(1020.0)
    assert result.requests == 11517
    assert result.seconds == pytest.approx(1.1)
    assert (result.non_2xx, result.socket_errors, result.errors) == (7, 5, 12)


def test_target_argv_substitutes_the_port() -> None:
    target = Target(name="t", command="'/a b/python' -m uvicorn x:app --port {port}", cwd=Path())
    assert target.argv(8123) == ["/a b/python", "-m", "uvicorn", "x:app", "--port", "8123"]


def test_ratios_and_tables_skip_missing_values() -> None:
    results: dict[str, Any] = {
        "seed": {"add": {"rps": 3000.0, "p50_ms": 9.0}, "token": {"rps": 2000.0}},
        "bare": {"add": {"rps": 15000.0, "p50_ms": 2.0}},
        "calcmcp": {"add": {"rps": 6000.0, "p50_ms": 4.5}, "token": {"rps": 5000.0}},
    }
    table = ratios(results)
    assert table["calcmcp"]["vs_seed"]["add.rps"] == 2.0
    assert table["calcmcp"]["vs_seed"]["token.rps"] == 2.5
    assert table["calcmcp"]["vs_bare"]["add.rps"] == 0.4
    assert table["calcmcp"]["vs_bare"]["token.rps"] is None
    assert "seed" not in table["seed"].get("vs_seed", {})
    assert "15,000" in values_table(results)
    assert "calcmcp/seed" in ratio_table(results)


class _FakeTransport:
    """Just enough of a transport for a Subscriber."""

    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True


def _subscriber(tracker: Tracker) -> tuple[Subscriber, _FakeTransport]:
    subscriber = Subscriber(b"GET /events\r\n\r\n", tracker, marker_pattern("abcd1234"))
    transport = _FakeTransport()
    subscriber.connection_made(cast(asyncio.Transport, transport))
    return subscriber, transport


def test_subscriber_finds_markers_split_across_reads_once_each() -> None:
    async def scenario() -> Tracker:
        tracker = Tracker(3)
        subscriber, transport = _subscriber(tracker)
        subscriber.data_received(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
        assert not subscriber.ready.done()
        subscriber.data_received(b"\r\n")
        assert subscriber.ready.done()
        tracker.start(1)
        subscriber.data_received(b"id: 1\nevent: broadcast\ndata: fanout bmabcd12")
        subscriber.data_received(b"34x0z\n\ndata: bmabcd1234x0z bmabcd1234x2z\n\n")
        assert transport.written == b"GET /events\r\n\r\n"
        return tracker

    tracker = asyncio.run(scenario())
    assert tracker.counts == [1, 0, 1]
    assert tracker.complete[0].is_set()
    assert not tracker.complete[1].is_set()


def test_subscriber_rejects_a_non_200_answer() -> None:
    async def scenario() -> None:
        subscriber, transport = _subscriber(Tracker(1))
        subscriber.data_received(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
        assert transport.closed
        with pytest.raises(FanoutError, match="401"):
            await subscriber.ready

    asyncio.run(scenario())


class FakeEventServer:
    """A tiny calcmcp-style server: `/token`, chunked `/events` with id/event/data lines,
    and `/broadcast`; it can skip one subscriber for one broadcast to simulate a loss."""

    def __init__(self, drop_broadcast: int | None = None) -> None:
        self.streams: list[asyncio.StreamWriter] = []
        self.drop_broadcast = drop_broadcast
        self.sent = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve keep-alive requests until the client goes away."""
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                lines = head.split("\r\n")
                target = lines[0].split(" ")[1]
                length = next(
                    (int(x.split(":")[1]) for x in lines if x.lower().startswith("content-length")),
                    0,
                )
                await reader.readexactly(length)
                if target == "/events":
                    writer.write(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                        b"transfer-encoding: chunked\r\n\r\n"
                    )
                    self.streams.append(writer)
                    return
                body = self.answer(target)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def answer(self, target: str) -> bytes:
        """The JSON body for `/token` or `/broadcast`; the latter also sends the event."""
        if target == "/token":
            return json.dumps({"access_token": "t"}).encode()
        message = parse_qs(urlsplit(target).query)["message"][0]
        self.sent += 1
        data = json.dumps({"message": message})
        payload = f"id: {self.sent}\nevent: broadcast\ndata: {data}\n\n".encode()
        chunk = b"%x\r\n%s\r\n" % (len(payload), payload)
        skip = 1 if self.sent - 1 == self.drop_broadcast else 0
        for stream in self.streams[skip:]:
            stream.write(chunk)
        return b'{"status": "ok"}'


async def _fanout_against(server: FakeEventServer, subscribers: int) -> dict[str, object]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    options = Options(
        base_url=f"http://127.0.0.1:{port}",
        subscribers=subscribers,
        broadcasts=3,
        server_pid=os.getpid(),
        broadcast_timeout=0.5,
        connect_timeout=5.0,
        connect_concurrency=20,
        gap=0.0,
    )
    try:
        return await run_fanout(options)
    finally:
        listener.close()


def test_fanout_end_to_end_against_a_calcmcp_style_server() -> None:
    result = asyncio.run(_fanout_against(FakeEventServer(), 50))
    assert result["connected"] == 50
    assert result["lost"] == 0
    assert result["ok"] is True
    assert result["broadcasts_complete"] == 3
    assert isinstance(result["rss_per_stream_kib"], float)


def test_fanout_counts_a_lost_event() -> None:
    result = asyncio.run(_fanout_against(FakeEventServer(drop_broadcast=1), 10))
    assert result["lost"] == 1
    assert result["ok"] is False
    assert result["broadcasts_complete"] == 2
