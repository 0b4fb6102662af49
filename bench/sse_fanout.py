"""SSE fan-out benchmark: how long one broadcast takes to reach every open `/events` stream.

The client opens S subscribers (one TCP connection each, a raw HTTP/1.1 `GET /events` with
the bearer token), waits until every one of them has its response headers, then sends B
broadcasts one at a time. Each broadcast carries a unique marker; a subscriber recognises it
by searching the raw bytes it receives, so the same client works whatever SSE framing the
server uses (`data:` only, or `id:`/`event:`/`data:`). For each broadcast it measures the time
from just before the `POST /broadcast` is written until the last subscriber has the marker,
and it counts every (subscriber, broadcast) pair that never arrived.

With `--server-pid` it also reads the server's resident memory (VmRSS in /proc/PID/status)
before the streams open, once they are all open, after the broadcasts and after closing.

Standard library only (uvloop is used when importable, as the server side uses it too).
Run it pinned to its own core, e.g. `taskset -c 1 python bench/sse_fanout.py --base-url URL`;
`bench/run.py` does that for you.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import re
import resource
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import cast
from urllib.parse import urlencode, urlsplit

DEFAULT_FORM = {
    "grant_type": "client_credentials",
    "client_id": "example_client_id",
    "client_secret": "example_client_secret",
    "scope": "calculator sse",
}
TAIL_KEEP = 64  # bytes kept between reads so a marker split across two reads is still found
HEADER_LIMIT = 16384
FD_HEADROOM = 64


class FanoutError(RuntimeError):
    """The benchmark could not run (server refused, token missing, too few descriptors...)."""


@dataclasses.dataclass(frozen=True)
class Options:
    """What to run against and how hard."""

    base_url: str
    subscribers: int
    broadcasts: int
    server_pid: int | None
    broadcast_timeout: float
    connect_timeout: float
    connect_concurrency: int
    gap: float


@dataclasses.dataclass(frozen=True)
class BroadcastTiming:
    """One broadcast: when the POST returned and when the last subscriber had the marker."""

    index: int
    post_ms: float
    all_received_ms: float | None
    received: int


class Tracker:
    """Counts, per broadcast, how many subscribers have seen its marker and when the last did.

    A broadcast is complete once every subscriber still connected has it, so a stream that the
    server drops costs its losses but does not stall the run until the timeout.
    """

    def __init__(self, broadcasts: int) -> None:
        """Prepare counters for `broadcasts` broadcasts; call `start` once connected."""
        self.expected = 0
        self.alive = 0
        self.counts = [0] * broadcasts
        self.alive_counts = [0] * broadcasts
        self.last_arrival = [0.0] * broadcasts
        self.complete = [asyncio.Event() for _ in range(broadcasts)]
        self.disconnected = 0

    def start(self, subscribers: int) -> None:
        """Set how many subscribers are connected when the broadcasts begin."""
        self.expected = subscribers
        self.alive = subscribers - self.disconnected

    def record(self, index: int, now: float) -> None:
        """Note that one more subscriber received broadcast `index` at `now`."""
        if not 0 <= index < len(self.counts):
            return
        self.counts[index] += 1
        self.alive_counts[index] += 1
        self.last_arrival[index] = max(self.last_arrival[index], now)
        self._check(index)

    def disconnect(self, seen: set[int]) -> None:
        """A subscriber that had the broadcasts in `seen` lost its connection."""
        self.disconnected += 1
        self.alive -= 1
        for index in seen:
            if 0 <= index < len(self.counts):
                self.alive_counts[index] -= 1
        for index in range(len(self.counts)):
            self._check(index)

    def _check(self, index: int) -> None:
        """Mark broadcast `index` complete once every live subscriber has it."""
        if self.alive_counts[index] >= self.alive and self.counts[index] > 0:
            self.complete[index].set()


class Subscriber(asyncio.Protocol):
    """One `/events` stream on its own connection, scanning raw bytes for broadcast markers."""

    def __init__(self, request: bytes, tracker: Tracker, pattern: re.Pattern[bytes]) -> None:
        """Keep the request to send on connect and where to report markers."""
        self._request = request
        self._tracker = tracker
        self._pattern = pattern
        self._buffer = b""
        self._headers_done = False
        self._seen: set[int] = set()
        self._closing = False
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the `GET /events` request as soon as the connection is up."""
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        """Parse the status line once, then look for markers in everything that follows."""
        now = time.perf_counter()
        buffer = self._buffer + data
        if not self._headers_done:
            body_start = self._take_headers(buffer)
            if body_start < 0:
                return
            buffer = buffer[body_start:]
        last_end = 0
        for match in self._pattern.finditer(buffer):
            index = int(match.group(1))
            if index not in self._seen:
                self._seen.add(index)
                self._tracker.record(index, now)
            last_end = match.end()
        self._buffer = buffer[max(last_end, len(buffer) - TAIL_KEEP) :]

    def _take_headers(self, buffer: bytes) -> int:
        """Return where the body starts once the headers are complete, else -1."""
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            self._buffer = buffer
            if len(buffer) > HEADER_LIMIT:
                self._fail(FanoutError("response headers too long"))
            return -1
        status_line = buffer.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or parts[1] != "200":
            self._fail(FanoutError(f"GET /events answered {status_line!r}"))
            return -1
        self._headers_done = True
        if not self.ready.done():
            self.ready.set_result(None)
        return end + 4

    def _fail(self, error: Exception) -> None:
        """Give up on this stream: report the error to whoever awaits `ready`, then close."""
        if not self.ready.done():
            self.ready.set_exception(error)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        """Count a stream that the server (or the network) closed while it was in use."""
        if self._headers_done and not self._closing:
            self._tracker.disconnect(self._seen)
        elif not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("closed before response headers"))

    def close(self) -> None:
        """Close the connection (end of the benchmark)."""
        self._closing = True
        if self.transport is not None:
            self.transport.close()


class HttpClient:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams, for `/token` and `/broadcast`."""

    def __init__(self, host: str, port: int) -> None:
        """Remember where to connect; the connection opens on first use."""
        self._host = host
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, target: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        """Send one request and return (status, body); reconnects if the server closed."""
        reader, writer = await self._connection()
        head = [f"{method} {target} HTTP/1.1", f"Host: {self._host}:{self._port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        return await self._read_response(reader)

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Return the open connection, opening a new one if needed."""
        if self._reader is None or self._writer is None or self._reader.at_eof():
            await self.close()
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        return self._reader, self._writer

    async def _read_response(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        """Read status, headers and a Content-Length (or read-to-close) body."""
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = dict(_split_header(line) for line in lines[1:] if ":" in line)
        if "content-length" in fields:
            return status, await reader.readexactly(int(fields["content-length"]))
        body = await reader.read()
        await self.close()
        return status, body

    async def close(self) -> None:
        """Close the connection, if any."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None


def _split_header(line: str) -> tuple[str, str]:
    """Split `Name: value` into a lower-cased name and a stripped value."""
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()


def read_rss_kib(pid: int) -> int:
    """Resident memory of process `pid` in KiB, from /proc/PID/status (VmRSS)."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise FanoutError(f"no VmRSS for pid {pid}")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def raise_fd_limit(needed: int) -> int:
    """Raise RLIMIT_NOFILE's soft limit to at least `needed` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise FanoutError(
            f"need {needed} file descriptors but the hard limit is {hard}: "
            "raise it (ulimit -Hn) or use fewer subscribers"
        )
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        return needed
    return int(soft)


async def fetch_token(client: HttpClient) -> str:
    """Get a bearer token with the client-credentials grant."""
    body = urlencode(DEFAULT_FORM).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, payload = await client.request("POST", "/token", headers, body)
    if status != 200:
        raise FanoutError(f"POST /token answered {status}: {payload[:200]!r}")
    token = json.loads(payload).get("access_token")
    if not isinstance(token, str):
        raise FanoutError("POST /token gave no access_token")
    return token


def events_request(host: str, port: int, token: str) -> bytes:
    """The raw `GET /events` request every subscriber sends."""
    return (
        f"GET /events HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    ).encode("latin-1")


async def open_subscribers(
    options: Options,
    *,
    host: str,
    port: int,
    request: bytes,
    tracker: Tracker,
    pattern: re.Pattern[bytes],
) -> tuple[list[Subscriber], list[str]]:
    """Open the subscribers with bounded concurrency; return those connected and the errors."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(options.connect_concurrency)

    async def open_one() -> Subscriber:
        async with gate:
            _, protocol = await loop.create_connection(
                lambda: Subscriber(request, tracker, pattern), host, port
            )
            await asyncio.wait_for(protocol.ready, options.connect_timeout)
            return protocol

    outcomes = await asyncio.gather(
        *(open_one() for _ in range(options.subscribers)), return_exceptions=True
    )
    subscribers = [item for item in outcomes if isinstance(item, Subscriber)]
    errors = [repr(item) for item in outcomes if isinstance(item, BaseException)]
    return subscribers, errors


async def send_broadcasts(
    options: Options, client: HttpClient, token: str, run_id: str, tracker: Tracker
) -> list[BroadcastTiming]:
    """Send the broadcasts one at a time, each awaited until all subscribers have it."""
    headers = {"Authorization": f"Bearer {token}"}
    timings = []
    for index in range(options.broadcasts):
        if tracker.alive <= 0:
            raise FanoutError("the server closed every stream")
        query = urlencode({"message": f"fanout {marker(run_id, index)}"})
        started = time.perf_counter()
        status, payload = await client.request("POST", f"/broadcast?{query}", headers)
        post_ms = (time.perf_counter() - started) * 1000
        if status >= 300:
            raise FanoutError(f"POST /broadcast answered {status}: {payload[:200]!r}")
        done = await _wait_event(tracker.complete[index], options.broadcast_timeout)
        elapsed = (tracker.last_arrival[index] - started) * 1000 if done else None
        timings.append(BroadcastTiming(index, post_ms, elapsed, tracker.counts[index]))
        await asyncio.sleep(options.gap)
    return timings


async def _wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for `event` at most `timeout` seconds; return whether it was set."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        return False
    return True


def marker(run_id: str, index: int) -> str:
    """The unique, URL- and JSON-safe marker of broadcast `index` in this run."""
    return f"bm{run_id}x{index}z"


def marker_pattern(run_id: str) -> re.Pattern[bytes]:
    """A regex that finds this run's markers in raw bytes, capturing the broadcast index."""
    return re.compile(rb"bm" + run_id.encode("ascii") + rb"x(\d+)z")


def _rss(pid: int | None) -> int | None:
    """Server RSS in KiB, or None when no pid was given."""
    return read_rss_kib(pid) if pid is not None else None


async def run_fanout(options: Options) -> dict[str, object]:
    """Run the whole fan-out benchmark and return its results as a JSON-ready dict."""
    split = urlsplit(options.base_url)
    host, port = split.hostname or "127.0.0.1", split.port or 80
    raise_fd_limit(options.subscribers + FD_HEADROOM)
    client = HttpClient(host, port)
    token = await fetch_token(client)
    run_id = secrets.token_hex(4)
    tracker = Tracker(options.broadcasts)
    rss = {"before": _rss(options.server_pid)}
    opened = time.perf_counter()
    subscribers, errors = await open_subscribers(
        options,
        host=host,
        port=port,
        request=events_request(host, port, token),
        tracker=tracker,
        pattern=marker_pattern(run_id),
    )
    connect_s = time.perf_counter() - opened
    if not subscribers:
        raise FanoutError(f"no stream opened: {errors[0] if errors else 'unknown error'}")
    tracker.start(len(subscribers))
    await asyncio.sleep(0.5)
    rss["connected"] = _rss(options.server_pid)
    try:
        timings = await send_broadcasts(options, client, token, run_id, tracker)
        await asyncio.sleep(0.2)
        rss["after_broadcasts"] = _rss(options.server_pid)
    finally:
        for subscriber in subscribers:
            subscriber.close()
        await client.close()
    await asyncio.sleep(0.5)
    rss["after_close"] = _rss(options.server_pid)
    return summarize(options, tracker, timings, errors=errors, connect_s=connect_s, rss=rss)


def summarize(
    options: Options,
    tracker: Tracker,
    timings: list[BroadcastTiming],
    *,
    errors: list[str],
    connect_s: float,
    rss: dict[str, int | None],
) -> dict[str, object]:
    """Turn raw timings, counters and memory readings into the result dict."""
    connected = tracker.expected
    lost = sum(connected - count for count in tracker.counts)
    complete = [t.all_received_ms for t in timings if t.all_received_ms is not None]
    result: dict[str, object] = {
        "subscribers": options.subscribers,
        "connected": connected,
        "connect_failures": len(errors),
        "connect_errors_sample": errors[:5],
        "connect_seconds": round(connect_s, 3),
        "broadcasts": options.broadcasts,
        "broadcasts_complete": len(complete),
        "lost": lost,
        "ok": lost == 0 and not errors and len(complete) == options.broadcasts,
        "disconnected_during_run": tracker.disconnected,
        "p50_ms": _round(percentile(complete, 50)) if complete else None,
        "p99_ms": _round(percentile(complete, 99)) if complete else None,
        "max_ms": _round(max(complete)) if complete else None,
        "post_p50_ms": _round(percentile([t.post_ms for t in timings], 50)) if timings else None,
        "per_broadcast_ms": [_round(t.all_received_ms) for t in timings],
        "rss_kib": rss,
    }
    result.update(memory_per_stream(rss, connected))
    return result


def memory_per_stream(rss: dict[str, int | None], connected: int) -> dict[str, float | None]:
    """Server RSS growth per open stream (KiB), once connected and after the broadcasts."""
    before = rss.get("before")

    def per_stream(key: str) -> float | None:
        value = rss.get(key)
        if before is None or value is None or connected == 0:
            return None
        return round((value - before) / connected, 2)

    return {
        "rss_per_stream_kib": per_stream("after_broadcasts"),
        "rss_per_stream_connected_kib": per_stream("connected"),
    }


def _round(value: float | None) -> float | None:
    """Round milliseconds to microsecond precision for the report."""
    return None if value is None else round(value, 3)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base-url", required=True, help="e.g. http://127.0.0.1:8000")
    parser.add_argument("--subscribers", type=int, default=1000, help="open streams (max 10000)")
    parser.add_argument("--broadcasts", type=int, default=20, help="broadcasts, sent one by one")
    parser.add_argument("--server-pid", type=int, help="server process id, for VmRSS readings")
    parser.add_argument("--broadcast-timeout", type=float, default=30.0, help="seconds each")
    parser.add_argument("--connect-timeout", type=float, default=30.0, help="seconds each")
    parser.add_argument("--connect-concurrency", type=int, default=200, help="connects in flight")
    parser.add_argument("--gap", type=float, default=0.05, help="pause between broadcasts (s)")
    parser.add_argument("--json-out", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    if not 1 <= args.subscribers <= 10000:
        parser.error("--subscribers must be between 1 and 10000")
    if not 1 <= args.broadcasts <= 10000:
        parser.error("--broadcasts must be between 1 and 10000")
    return args


def options_from(args: argparse.Namespace) -> Options:
    """Build the typed options from parsed flags."""
    return Options(
        base_url=args.base_url,
        subscribers=args.subscribers,
        broadcasts=args.broadcasts,
        server_pid=args.server_pid,
        broadcast_timeout=args.broadcast_timeout,
        connect_timeout=args.connect_timeout,
        connect_concurrency=args.connect_concurrency,
        gap=args.gap,
    )


def _event_loop_runner() -> asyncio.Runner:
    """An asyncio runner on uvloop when it is installed (lower client overhead)."""
    try:
        import uvloop  # noqa: PLC0415 - optional speed-up

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        return asyncio.Runner()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print a one-line summary and the JSON, write `--json-out`."""
    args = parse_args(argv)
    try:
        with _event_loop_runner() as runner:
            result = runner.run(run_fanout(options_from(args)))
    except (FanoutError, OSError) as error:
        print(f"sse_fanout: {error}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2)
    if args.json_out:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
