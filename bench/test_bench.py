"""Self-tests of the benchmark harness (no wrk, no real server needed).

Run: `.venv/bin/python -m pytest bench/test_bench.py -q` from the repository root.
"""

# ruff: noqa: S101

from __future__ import annotations

import asyncio
import http.server
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
from report import derive, goals, ratio_table, ratios, values_table
from scale import (
    DEFAULT_REDIS_URL,
    RedisError,
    cpu_seconds,
    descriptor_counts,
    forget_keys,
    process_tree,
    redis_cpu_seconds,
    redis_ping,
    socket_holder,
    workers_of,
)
from sse_fanout import (
    ANCILLARY_SPACE,
    SCM_TIMESTAMPNS,
    SO_TIMESTAMPNS,
    TIMESPEC,
    ChunkDecoder,
    FanoutError,
    Options,
    ResponseParser,
    StreamParser,
    Tracker,
    kernel_time_ns,
    marker_pattern,
    run_fanout,
)
from stdiobench import (
    StdioBenchError,
    StdioSettings,
    bench_stdio,
    check_tools_list,
    summarize,
    time_to_answer,
)
from targets import Target, default_targets
from wrkbench import (
    MCP_BODY_BYTES,
    MCP_HEADERS,
    MCP_METADATA_PATH,
    MCP_SCRIPT,
    WrkError,
    check_mcp,
    fetch_token,
    mcp_call_result,
    mcp_resource,
    parse_wrk_output,
)

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


def test_stream_parser_finds_markers_split_across_reads_once_each() -> None:
    parser = StreamParser(marker_pattern("abcd1234"))
    assert parser.feed(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n") == []
    assert not parser.headers_done
    assert parser.feed(b"\r\n") == []
    assert parser.headers_done
    assert parser.feed(b"id: 1\nevent: broadcast\ndata: fanout bmabcd12") == []
    assert parser.feed(b"34x0z\n\ndata: bmabcd1234x0z bmabcd1234x2z\n\n") == [0, 2]
    assert parser.feed(b"data: bmabcd1234x2z bmabcd1234x1z\n\n") == [1]
    assert parser.seen == {0, 1, 2}


def test_stream_parser_undoes_chunking_even_inside_a_marker() -> None:
    parser = StreamParser(marker_pattern("abcd1234"))
    head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
    first, second = b"data: fanout bmabc", b"d1234x7z\n\n"
    body = b"%x\r\n%s\r\n%x\r\n%s\r\n" % (len(first), first, len(second), second)
    stream = head + body + b"0\r\n\r\n"
    found = [index for byte in range(len(stream)) for index in parser.feed(stream[byte : byte + 1])]
    assert found == [7]
    assert parser.ended


def test_chunk_decoder_handles_any_split_and_rejects_garbage() -> None:
    payloads = [b"a" * 17, b"data: x\n\n", b"b" * 300]
    wire = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in payloads) + b"0\r\n\r\n"
    for step in (1, 2, 5, 64, len(wire)):
        decoder = ChunkDecoder()
        out = b"".join(decoder.feed(wire[i : i + step]) for i in range(0, len(wire), step))
        assert out == b"".join(payloads)
        assert decoder.done
    with pytest.raises(FanoutError, match="chunk-size"):
        ChunkDecoder().feed(b"zz\r\n")


def test_stream_parser_rejects_a_non_200_answer() -> None:
    parser = StreamParser(marker_pattern("abcd1234"))
    with pytest.raises(FanoutError, match="401"):
        parser.feed(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")


def test_response_parser_reads_length_chunked_and_close_delimited_bodies() -> None:
    sized = ResponseParser()
    sized.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab")
    assert not sized.done
    sized.feed(b"cdeEXTRA")
    assert (sized.done, sized.status, sized.body) == (True, 200, b"abcde")
    chunked = ResponseParser()
    chunked.feed(b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
    assert not chunked.done
    chunked.feed(b"0\r\n\r\n")
    assert (chunked.done, chunked.status, chunked.body) == (True, 202, b"abc")
    until_close = ResponseParser()
    until_close.feed(b"HTTP/1.0 200 OK\r\n\r\nxy")
    until_close.eof()
    assert (until_close.done, until_close.body) == (True, b"xy")
    cut = ResponseParser()
    cut.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab")
    with pytest.raises(FanoutError, match="closed"):
        cut.eof()


def test_kernel_time_is_read_from_scm_timestampns() -> None:
    payload = TIMESPEC.pack(1_700_000_000, 123_456_789)
    other = (socket.SOL_SOCKET, SCM_TIMESTAMPNS + 1, b"\0" * 16)
    assert kernel_time_ns([other, (socket.SOL_SOCKET, SCM_TIMESTAMPNS, payload)]) == (
        1_700_000_000_123_456_789
    )
    assert kernel_time_ns([other]) is None


def test_loopback_receive_timestamps_are_queue_times_not_read_times() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        reader = socket.create_connection(listener.getsockname())
        reader.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        writer, _ = listener.accept()
        with reader, writer:
            stamps = []
            for _ in range(3):  # the kernel may enable timestamping a moment after the first
                sent = time.time_ns()
                writer.sendall(b"x")
                time.sleep(0.05)
                _, ancdata, _, _ = reader.recvmsg(16, ANCILLARY_SPACE)
                stamps.append((sent, kernel_time_ns(ancdata), time.time_ns()))
    sent, stamp, read = stamps[-1]
    assert stamp is not None
    assert sent <= stamp < sent + 20_000_000 < read


def test_tracker_completes_with_every_live_subscriber_and_keeps_first_and_last() -> None:
    tracker = Tracker(2)
    tracker.start(3)
    tracker.record(0, 50, 70)
    tracker.record(0, 10, 90)
    assert not tracker.complete(0)
    tracker.disconnect({0})  # one of the two that had it: 1 of the 2 still connected has it
    assert not tracker.complete(0)
    tracker.record(0, 30, 40)
    assert tracker.complete(0)
    assert (tracker.first_kernel_ns[0], tracker.last_kernel_ns[0]) == (10, 50)
    assert tracker.last_client_ns[0] == 90
    assert not tracker.complete(1)


class FakeEventServer:
    """A tiny calcmcp-style server: `/token`, chunked `/events` with id/event/data lines,
    and `/broadcast`. It can skip one subscriber for one broadcast (a lost event), close the
    first stream after a broadcast (a disconnect), or cut each event into two chunks in the
    middle of its marker."""

    def __init__(
        self,
        drop_broadcast: int | None = None,
        *,
        close_after: int | None = None,
        split_marker: bool = False,
    ) -> None:
        self.streams: list[asyncio.StreamWriter] = []
        self.drop_broadcast = drop_broadcast
        self.close_after = close_after
        self.split_marker = split_marker
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
        cut = payload.index(b"x", payload.index(b"bm")) if self.split_marker else len(payload)
        pieces = [piece for piece in (payload[:cut], payload[cut:]) if piece]
        chunks = [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces]
        skip = 1 if self.sent - 1 == self.drop_broadcast else 0
        for stream in self.streams[skip:]:
            for chunk in chunks:
                stream.write(chunk)
        if self.sent - 1 == self.close_after:
            self.streams.pop(0).close()
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
        return await asyncio.to_thread(run_fanout, options)
    finally:
        listener.close()


@pytest.mark.parametrize("split_marker", [False, True])
def test_fanout_end_to_end_against_a_calcmcp_style_server(split_marker: bool) -> None:
    result = asyncio.run(_fanout_against(FakeEventServer(split_marker=split_marker), 50))
    assert result["connected"] == 50
    assert result["lost"] == 0
    assert result["ok"] is True
    assert result["broadcasts_complete"] == 3
    assert result["marker_reads"] == 150
    kernel = cast(list[float], result["per_broadcast_ms"])
    client = cast(list[float], result["client_per_broadcast_ms"])
    assert all(0 < k <= c for k, c in zip(kernel, client, strict=True))
    assert result["p50_ms"] is not None
    assert result["client_p50_ms"] is not None
    assert isinstance(result["rss_per_stream_kib"], float)


def test_fanout_counts_a_lost_event() -> None:
    result = asyncio.run(_fanout_against(FakeEventServer(drop_broadcast=1), 10))
    assert result["lost"] == 1
    assert result["ok"] is False
    assert result["broadcasts_complete"] == 2


def test_fanout_counts_a_dropped_stream_without_waiting_for_it() -> None:
    result = asyncio.run(_fanout_against(FakeEventServer(close_after=0), 10))
    assert result["disconnected_during_run"] == 1
    assert result["lost"] == 2
    assert result["broadcasts_complete"] == 3
    assert result["ok"] is False


def test_sse_rows_show_delivered_and_client_read_latency() -> None:
    results: dict[str, Any] = {
        "seed": {"sse": {"p50_ms": 30.0, "p99_ms": 40.0, "client_p50_ms": 35.0}},
        "calcmcp": {"sse": {"p50_ms": 15.0, "p99_ms": 20.0, "client_p50_ms": 25.0}},
    }
    table = values_table(results)
    assert "broadcast delivered to all streams p50" in table
    assert "broadcast read by client on all, p50" in table
    assert ratios(results)["calcmcp"]["vs_seed"]["sse.p50_ms"] == 0.5
    assert "sse.client_p50_ms" not in ratios(results)["calcmcp"]["vs_seed"]


def _lua_strings(text: str, assignment: str) -> str:
    """The concatenated string literals of one Lua assignment (`wrk.body = '...' .. '...'`)."""
    start = text.index(assignment)
    end = text.index("\n", text.index("}}}}", start))
    return "".join(re.findall(r"'([^']*)'", text[start:end]))


def test_wrk_mcp_script_sends_the_checked_request() -> None:
    lua = MCP_SCRIPT.read_text(encoding="utf-8")
    body = _lua_strings(lua, "wrk.body =")
    assert body.encode() == MCP_BODY_BYTES
    assert json.loads(body)["params"]["_meta"] == {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    headers = dict(re.findall(r'^wrk\.headers\["([^"]+)"\] = "([^"]*)"$', lua, re.MULTILINE))
    assert headers == MCP_HEADERS
    assert 'wrk.method = "POST"' in lua


def test_mcp_call_result_reads_structured_content() -> None:
    good = b'{"jsonrpc":"2.0","id":1,"result":{"structuredContent":{"result":8}}}'
    assert mcp_call_result(good) == 8
    assert mcp_call_result(b'{"jsonrpc":"2.0","id":1,"error":{"code":-32602}}') is None
    assert mcp_call_result(b"event: message\ndata: {}") is None
    assert mcp_call_result(b"[1, 2]") is None


class FakeMcpHandler(http.server.BaseHTTPRequestHandler):
    """calcmcp's shape: RFC 9728 metadata, /token honouring `resource`, /mcp that refuses a
    token for another audience and answers add(5, 3)."""

    resource = "http://public.example/mcp"

    def do_GET(self) -> None:
        if self.path == MCP_METADATA_PATH:
            self._answer(200, {"resource": self.resource})
        else:
            self._answer(404, {})

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/token":
            form = parse_qs(body.decode())
            self._answer(200, {"access_token": "aud=" + form.get("resource", ["api"])[0]})
        elif self.headers.get("Authorization") != f"Bearer aud={self.resource}":
            self._answer(401, {"detail": "not meant for this resource"})
        elif any(self.headers.get(k) != v for k, v in MCP_HEADERS.items()):
            self._answer(400, {"detail": "headers"})
        else:
            request = json.loads(body)
            arguments = request["params"]["arguments"]
            result = {"structuredContent": {"result": arguments["a"] + arguments["b"]}}
            self._answer(200, {"jsonrpc": "2.0", "id": request["id"], "result": result})

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


def test_mcp_token_is_requested_for_the_advertised_resource_and_checked() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeMcpHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert mcp_resource(base) == FakeMcpHandler.resource
        check_mcp(base, fetch_token(base, resource=mcp_resource(base)))
        with pytest.raises(WrkError, match="401"):
            check_mcp(base, fetch_token(base))  # the API's token is refused at /mcp
    finally:
        server.shutdown()
        server.server_close()


def test_calcmcp_targets_substitute_the_port_into_their_public_url() -> None:
    targets = default_targets(Path("/nowhere"))
    calcmcp, hs256 = targets["calcmcp"], targets["calcmcp-hs256"]
    assert calcmcp.environment(8123)["CALCMCP_PUBLIC_URL"] == "http://127.0.0.1:8123"
    assert hs256.environment(9000)["CALCMCP_PUBLIC_URL"] == "http://127.0.0.1:9000"
    assert {"mcp", "stdio"} <= set(calcmcp.benchmarks)
    assert set(calcmcp.stdio) == {"calcmcp", "python_m_src"}
    assert "mcp" in hs256.benchmarks
    assert "stdio" not in hs256.benchmarks
    assert not {"mcp", "stdio"} & set(targets["seed"].benchmarks)
    assert Target(name="t", command="x", cwd=Path()).benchmarks == ("token", "add", "sse")


def test_mcp_is_compared_with_the_same_targets_rest_add() -> None:
    results: dict[str, Any] = {
        "calcmcp": {"add": {"rps": 6000.0, "p50_ms": 4.0}, "mcp": {"rps": 5100.0, "p50_ms": 5.0}},
        "slow": {"add": {"rps": 6000.0, "p50_ms": 4.0}, "mcp": {"rps": 4200.0, "p50_ms": 6.0}},
        "alone": {"mcp": {"rps": 4000.0, "p50_ms": 5.0}},
    }
    derive(results)
    assert results["calcmcp"]["mcp"]["rps_vs_rest"] == 0.85
    assert results["calcmcp"]["mcp"]["p50_vs_rest"] == 1.25
    assert results["calcmcp"]["mcp"]["meets_goal"] is True
    assert results["slow"]["mcp"]["meets_goal"] is False
    assert results["alone"]["mcp"]["rps_vs_rest"] is None
    assert results["alone"]["mcp"]["meets_goal"] is None
    assert "0.85x" in values_table(results)
    lines = goals(results)
    assert any("calcmcp" in line and "0.85x" in line and line.endswith(": met") for line in lines)
    assert any(line.startswith("slow:") and "NOT met" in line for line in lines)
    assert "mcp.rps" not in ratios(results).get("calcmcp", {}).get("vs_seed", {})


def test_stdio_summary_and_nested_metric_paths() -> None:
    samples = [float(x) for x in range(100, 120)]
    summary = summarize(samples, [400.0, 150.0])
    assert (summary["p50_ms"], summary["p99_ms"], summary["max_ms"]) == (109.0, 119.0, 119.0)
    assert summary["warmup_ms"] == [400.0, 150.0]
    stdio = {"goal_ms": 250.0, "servers": ["calcmcp"], "calcmcp": {"command": "c", **summary}}
    results: dict[str, Any] = {"calcmcp": {"stdio": stdio}}
    assert "calcmcp stdio to 1st tools/list p50" in values_table(results)
    (line,) = goals(results)
    assert line.endswith("(goal < 250 ms): p50 met, p99 met")


def test_check_tools_list_wants_add() -> None:
    check_tools_list(b'{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"add"}]}}')
    with pytest.raises(StdioBenchError, match="no `add`"):
        check_tools_list(b'{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}')
    with pytest.raises(StdioBenchError, match="not a tools/list"):
        check_tools_list(b'{"jsonrpc":"2.0","id":1,"error":{"code":-32601}}')


FAKE_STDIO_SERVER = """\
import json, sys
request = json.loads(sys.stdin.readline())
assert request["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"
tools = [{"name": "add"}]
print(json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": {"tools": tools}}))
sys.stdout.flush()
sys.stdin.read()
"""


def _stdio_settings(**changes: Any) -> StdioSettings:
    cpus = sorted(os.sched_getaffinity(0))
    return StdioSettings(server_cpu=cpus[0], client_cpu=cpus[-1], **changes)


def test_stdio_cold_start_is_timed_to_the_answer(tmp_path: Path) -> None:
    saved = os.sched_getaffinity(0)
    argv = [sys.executable, "-c", FAKE_STDIO_SERVER]
    elapsed = time_to_answer(argv, dict(os.environ), tmp_path, _stdio_settings())
    assert 0 < elapsed < 10_000
    assert os.sched_getaffinity(0) == {_stdio_settings().client_cpu}  # the timer's core
    os.sched_setaffinity(0, saved)
    silent = [sys.executable, "-c", "import sys; sys.stdin.read()"]
    with pytest.raises(StdioBenchError, match="no response line in time"):
        time_to_answer(silent, dict(os.environ), tmp_path, _stdio_settings(timeout=0.5))
    with pytest.raises(StdioBenchError, match="stdout closed"):
        time_to_answer(
            [sys.executable, "-c", "pass"], dict(os.environ), tmp_path, _stdio_settings()
        )


def test_bench_stdio_runs_warmups_and_references(tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(FAKE_STDIO_SERVER, encoding="utf-8")
    saved = os.sched_getaffinity(0)
    result = bench_stdio(
        {"fake": f"{sys.executable} {script}"},
        sys.executable,
        _stdio_settings(runs=3, warmup=1),
        cwd=tmp_path,
        sdk=False,
    )
    assert os.sched_getaffinity(0) == saved
    assert result["servers"] == ["fake"]
    assert result["fake"]["runs"] == 3
    assert len(result["fake"]["warmup_ms"]) == 1
    assert result["python"]["p50_ms"] > 0


# --- scale-out targets (calcmcp serve --workers N on Redis) ------------------------------------


def test_scale_targets_serve_with_workers_on_redis_on_every_core() -> None:
    targets = default_targets(Path("/nowhere"), "redis://127.0.0.1:6390/0")
    prefixes = set()
    for workers in (1, 2, 4):
        target = targets[f"calcmcp-w{workers}"]
        argv = target.argv(8123)
        assert argv[argv.index("serve") :] == [
            "serve",
            "--workers",
            str(workers),
            "--host",
            "127.0.0.1",
            "--port",
            "8123",
        ]
        assert (target.workers, target.pinned, target.benchmarks) == (
            workers,
            False,
            ("add", "sse"),
        )
        env = target.environment(8123)
        assert env["CALCMCP_REDIS_URL"] == target.redis_url == "redis://127.0.0.1:6390/0"
        assert env["CALCMCP_PUBLIC_URL"] == "http://127.0.0.1:8123"
        assert env["CALCMCP_ACCESS_LOG"] == "false"  # as --no-access-log for the others
        # one prefix per run and target, and per server start (the port is in it)
        assert env["CALCMCP_REDIS_PREFIX"].endswith(":8123:")
        assert target.environment(8124)["CALCMCP_REDIS_PREFIX"] != env["CALCMCP_REDIS_PREFIX"]
        prefixes.add(env["CALCMCP_REDIS_PREFIX"])
    assert len(prefixes) == 3
    assert targets["calcmcp"].pinned
    assert targets["calcmcp"].redis_url is None


def test_scale_goals_compare_with_one_worker_and_check_the_fanout_at_5000_streams() -> None:
    results: dict[str, Any] = {
        "calcmcp-w1": {"add": {"rps": 4000.0}, "sse": {"connected": 5000, "p99_ms": 90.0}},
        "calcmcp-w2": {"add": {"rps": 7000.0}, "sse": {"connected": 5000, "p99_ms": 151.0}},
        "calcmcp-w4": {"add": {"rps": 6000.0}, "sse": {"connected": 1000, "p99_ms": 20.0}},
        "calcmcp": {"add": {"rps": 9000.0}},
    }
    derive(results)
    assert results["calcmcp-w2"]["add"]["rps_vs_w1"] == 1.75
    assert "rps_vs_w1" not in results["calcmcp"]["add"]
    lines = goals(results)
    assert "calcmcp-w2: REST add 7,000 req/s = 1.75x calcmcp-w1 (goal >= 1.7x): met" in lines
    assert any(line.startswith("calcmcp-w4: REST add") and "no goal" in line for line in lines)
    assert any(
        line.startswith("calcmcp-w1: broadcast") and line.endswith(": met") for line in lines
    )
    assert any(line.startswith("calcmcp-w2: broadcast") and "NOT met" in line for line in lines)
    assert any(line.startswith("calcmcp-w4: broadcast") and "for 5,000" in line for line in lines)
    assert "1.75x" in values_table(results)


def test_the_redis_helpers_ping_read_cpu_and_forget_only_the_prefix() -> None:
    url = DEFAULT_REDIS_URL
    prefix = f"calcmcp-bench-test:{secrets.token_hex(4)}:"
    client = redis.Redis.from_url(url)
    try:
        client.mset({f"{prefix}a": 1, f"{prefix}b": 2, f"{prefix}x:c": 3, f"{prefix}-other": 4})
        redis_ping(url)
        assert redis_cpu_seconds(url) > 0
        assert forget_keys(url, f"{prefix}x:") == 1
        assert forget_keys(url, f"{prefix}a") == 1
        left = sorted(key.decode() for key in client.keys(f"{prefix}*"))
        assert left == [f"{prefix}-other", f"{prefix}b"]
    finally:
        client.delete(f"{prefix}b", f"{prefix}-other")
        client.close()
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = unused.getsockname()[1]
    with pytest.raises(RedisError, match="Redis at"):
        redis_ping(f"redis://127.0.0.1:{closed}/0")


def test_process_helpers_find_children_their_cpu_and_who_holds_a_connection() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in process_tree(os.getpid())
        assert cpu_seconds([os.getpid()]) > 0
        assert workers_of(os.getpid()) == []  # not uvicorn workers
    finally:
        child.kill()
        child.wait()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as client:
            accepted, _ = listener.accept()
            with accepted:
                local = client.getsockname()[1]
                assert socket_holder(port, local, [os.getpid()]) == os.getpid()
                assert socket_holder(port, local, []) is None
                assert descriptor_counts([os.getpid()])[str(os.getpid())] >= 3


def test_the_cost_of_the_metrics_and_the_access_log_is_reported_against_calcmcp() -> None:
    results = {
        "calcmcp": {"add": {"rps": 9600.0}, "mcp": {"rps": 8000.0}},
        "calcmcp-nometrics": {"add": {"rps": 10000.0}, "mcp": {"rps": 8000.0}},
        "calcmcp-accesslog": {"add": {"rps": 7200.0}},
    }
    lines = goals(results)
    assert (
        "the metrics cost 4.0% of add throughput (9,600 req/s with, 10,000 without)"
        " (goal < 5%): met" in lines
    )
    assert "the metrics cost 0.0% of mcp throughput (8,000 req/s with, 8,000 without)" in lines
    assert "the access log cost 25.0% of add throughput (7,200 req/s with, 9,600 without)" in lines
    results["calcmcp"]["add"]["rps"] = 9400.0
    assert any(line.endswith("(goal < 5%): NOT met") for line in goals(results))
