"""SSE fan-out benchmark: how long one broadcast takes to reach every open `/events` stream.

The client opens S subscribers (one TCP connection each, a raw HTTP/1.1 `GET /events` with
the bearer token), waits until every one of them has its response headers, then sends B
broadcasts one at a time. Each broadcast carries a unique marker; a subscriber recognises it
by searching the bytes it receives (after undoing chunked transfer-encoding), so the same
client works whatever SSE framing the server uses (`data:` only, or `id:`/`event:`/`data:`).
It counts every (subscriber, broadcast) pair that never arrived.

Latency is measured with kernel receive timestamps: every subscriber socket has
SO_TIMESTAMPNS set and is read with `recvmsg`, so each read comes with the time (CLOCK_REALTIME)
at which the kernel queued its data on that socket. A broadcast's latency is the largest
(timestamp of the read that completed its marker - t0) over the subscribers, t0 being
`time.time_ns()` just before the `POST /broadcast` is written. This is when the server
*delivered* the event, independent of how long this single-threaded client then needs to get
round to 1000+ sockets. The time at which the client itself read the marker is reported too
(`client_*`): it includes the client's own processing and has a floor of several ms at 1000
streams even against a server that writes to every socket in a tight loop.

The sockets are driven directly with an epoll selector (asyncio transports do not expose
ancillary data); everything is bounded in time and count and stays on the given host (use
127.0.0.1). With `--server-pid` it also reads the server's resident memory (VmRSS in
/proc/PID/status) before the streams open, once they are all open, after the broadcasts and
after closing. Linux only; standard library only. Run it pinned to its own core, e.g.
`taskset -c 1 python bench/sse_fanout.py --base-url URL`; `bench/run.py` does that for you.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import functools
import json
import math
import os
import re
import resource
import secrets
import selectors
import socket
import struct
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from scale import descriptor_counts

DEFAULT_FORM = {
    "grant_type": "client_credentials",
    "client_id": "example_client_id",
    "client_secret": "example_client_secret",
    "scope": "calculator sse",
}
TAIL_KEEP = 64  # bytes kept between reads so a marker split across two reads is still found
HEADER_LIMIT = 16384
CHUNK_LINE_LIMIT = 1024
FD_HEADROOM = 64
READ_SIZE = 65536
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
# Python does not export these; 35 is SO_TIMESTAMPNS (alias SO_TIMESTAMPNS_OLD, a native
# struct timespec) in asm-generic/socket.h, which x86, arm and most other Linux ports use.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SCM_TIMESTAMPNS = getattr(socket, "SCM_TIMESTAMPNS", SO_TIMESTAMPNS)
TIMESPEC = struct.Struct("@ll")  # struct timespec: tv_sec, tv_nsec (native longs)
ANCILLARY_SPACE = socket.CMSG_SPACE(TIMESPEC.size)


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
    other_pids: tuple[int, ...] = ()
    """More processes of the server (a supervisor's workers): memory is summed over all of
    them, and the streams each one holds are counted."""


@dataclasses.dataclass(frozen=True)
class BroadcastTiming:
    """One broadcast, in ms from just before its POST was written (None if incomplete).

    `delivered_ms`: kernel receive timestamp of the last subscriber to get the marker;
    `first_ms`: the same for the first one; `client_ms`: when the client had read it on the
    last subscriber; `post_ms`: when the POST's response had been read.
    """

    index: int
    post_ms: float
    delivered_ms: float | None
    first_ms: float | None
    client_ms: float | None
    received: int


def kernel_time_ns(ancdata: Sequence[tuple[int, int, bytes]]) -> int | None:
    """The SCM_TIMESTAMPNS receive time (ns since the epoch) in `recvmsg` ancillary data."""
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(payload) >= 16:
            seconds, nanoseconds = TIMESPEC.unpack_from(payload)
            return int(seconds) * NS_PER_S + int(nanoseconds)
    return None


class Tracker:
    """Per broadcast: how many subscribers have its marker, and the first and last times.

    A broadcast is complete once every subscriber still connected has it, so a stream that the
    server drops costs its losses but does not stall the run until the timeout.
    """

    def __init__(self, broadcasts: int) -> None:
        """Prepare counters for `broadcasts` broadcasts; call `start` once connected."""
        self.expected = 0
        self.alive = 0
        self.disconnected = 0
        self.counts = [0] * broadcasts
        self.alive_counts = [0] * broadcasts
        self.first_kernel_ns = [0] * broadcasts
        self.last_kernel_ns = [0] * broadcasts
        self.last_client_ns = [0] * broadcasts

    def start(self, subscribers: int) -> None:
        """Set how many subscribers are connected when the broadcasts begin."""
        self.expected = subscribers
        self.alive = subscribers - self.disconnected

    def record(self, index: int, kernel_ns: int, client_ns: int) -> None:
        """One more subscriber got broadcast `index`: queued at `kernel_ns`, read at `client_ns`."""
        if not 0 <= index < len(self.counts):
            return
        if self.counts[index] == 0 or kernel_ns < self.first_kernel_ns[index]:
            self.first_kernel_ns[index] = kernel_ns
        self.counts[index] += 1
        self.alive_counts[index] += 1
        self.last_kernel_ns[index] = max(self.last_kernel_ns[index], kernel_ns)
        self.last_client_ns[index] = max(self.last_client_ns[index], client_ns)

    def disconnect(self, seen: set[int]) -> None:
        """A subscriber that had the broadcasts in `seen` lost its connection."""
        self.disconnected += 1
        self.alive -= 1
        for index in seen:
            if 0 <= index < len(self.counts):
                self.alive_counts[index] -= 1

    def complete(self, index: int) -> bool:
        """Whether every live subscriber has broadcast `index`."""
        return self.counts[index] > 0 and self.alive_counts[index] >= self.alive


class ChunkDecoder:
    """Incremental decoder of HTTP/1.1 chunked transfer-encoding (chunk extensions ignored)."""

    def __init__(self) -> None:
        """Start before the first chunk-size line."""
        self._line = b""
        self._remaining = 0  # data bytes left in the current chunk
        self._skip = 0  # bytes of the CRLF after a chunk's data still to skip
        self.done = False  # the last (zero-size) chunk was seen

    def feed(self, data: bytes) -> bytes:
        """Return the payload bytes contained in `data`."""
        out: list[bytes] = []
        pos, size = 0, len(data)
        while pos < size and not self.done:
            if self._remaining:
                take = min(self._remaining, size - pos)
                out.append(data[pos : pos + take])
                pos += take
                self._remaining -= take
                if not self._remaining:
                    self._skip = 2
            elif self._skip:
                take = min(self._skip, size - pos)
                pos += take
                self._skip -= take
            else:
                pos = self._size_line(data, pos)
        return b"".join(out)

    def _size_line(self, data: bytes, pos: int) -> int:
        """Consume (part of) a chunk-size line from `pos`; return where to go on."""
        end = data.find(b"\n", pos)
        if end < 0:
            self._line += data[pos:]
            if len(self._line) > CHUNK_LINE_LIMIT:
                raise FanoutError("chunk-size line too long")
            return len(data)
        line, self._line = self._line + data[pos:end], b""
        digits = line.split(b";", 1)[0].strip()
        try:
            length = int(digits, 16)
        except ValueError:
            raise FanoutError(f"bad chunk-size line {line[:40]!r}") from None
        if length < 0:
            raise FanoutError(f"bad chunk-size line {line[:40]!r}")
        if length == 0:
            self.done = True
        self._remaining = length
        return end + 1


def _head_fields(head: bytes) -> tuple[str, dict[str, str]]:
    """The status line and the lower-cased header fields of a response head."""
    lines = head.decode("latin-1").split("\r\n")
    return lines[0], dict(_split_header(line) for line in lines[1:] if ":" in line)


def _status(status_line: str) -> int | None:
    """The status code of an HTTP/1.x status line, or None if it is not one."""
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None
    return int(parts[1])


def _is_chunked(fields: dict[str, str]) -> bool:
    """Whether the response body uses chunked transfer-encoding."""
    return "chunked" in fields.get("transfer-encoding", "").lower()


class StreamParser:
    """One `/events` response: checks the status, then yields the markers of new broadcasts.

    Pure byte handling (no socket), so it can be fed in arbitrary pieces: a marker split
    across two reads, or across two chunks, is still found, and each broadcast only once.
    """

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        """Start before the status line; `pattern` captures the broadcast index."""
        self._pattern = pattern
        self._head = b""
        self._decoder: ChunkDecoder | None = None
        self._tail = b""
        self.headers_done = False
        self.ended = False  # a chunked body reached its last chunk
        self.seen: set[int] = set()

    def feed(self, data: bytes) -> list[int]:
        """Consume `data`; return the broadcast indexes whose marker completed in it."""
        if not self.headers_done:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > HEADER_LIMIT:
                    raise FanoutError("response headers too long")
                return []
            status_line, fields = _head_fields(self._head[:end])
            if _status(status_line) != 200:
                raise FanoutError(f"GET /events answered {status_line[:200]!r}")
            self._decoder = ChunkDecoder() if _is_chunked(fields) else None
            data, self._head = self._head[end + 4 :], b""
            self.headers_done = True
        if self._decoder is not None:
            data = self._decoder.feed(data)
            self.ended = self._decoder.done
        buffer = self._tail + data
        new: list[int] = []
        last_end = 0
        for match in self._pattern.finditer(buffer):
            index = int(match.group(1))
            if index not in self.seen:
                self.seen.add(index)
                new.append(index)
            last_end = match.end()
        self._tail = buffer[max(last_end, len(buffer) - TAIL_KEEP) :]
        return new


class ResponseParser:
    """One plain HTTP/1.1 response (Content-Length, chunked, or read until close)."""

    def __init__(self) -> None:
        """Start before the status line."""
        self._head = b""
        self._parts: list[bytes] = []
        self._remaining: int | None = None
        self._decoder: ChunkDecoder | None = None
        self.status: int | None = None
        self.done = False

    def feed(self, data: bytes) -> None:
        """Consume bytes of the response (anything after its end is ignored)."""
        if self.done:
            return
        if self.status is None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > HEADER_LIMIT:
                    raise FanoutError("response headers too long")
                return
            status_line, fields = _head_fields(self._head[:end])
            self.status = _status(status_line)
            if self.status is None:
                raise FanoutError(f"not an HTTP response: {status_line[:200]!r}")
            data, self._head = self._head[end + 4 :], b""
            if _is_chunked(fields):
                self._decoder = ChunkDecoder()
            elif "content-length" in fields:
                self._remaining = int(fields["content-length"])
        if self._decoder is not None:
            self._parts.append(self._decoder.feed(data))
            self.done = self._decoder.done
        elif self._remaining is not None:
            self._parts.append(data[: self._remaining])
            self._remaining -= len(self._parts[-1])
            self.done = self._remaining == 0
        else:
            self._parts.append(data)

    def eof(self) -> None:
        """The server closed the connection: fine only for a read-until-close body."""
        if self.done:
            return
        if self.status is None or self._decoder is not None or self._remaining is not None:
            raise FanoutError("connection closed before the response was complete")
        self.done = True

    @property
    def body(self) -> bytes:
        """The body read so far."""
        return b"".join(self._parts)


class HttpClient:
    """A minimal HTTP/1.1 keep-alive client for `/token` and `/broadcast`.

    `request` is blocking (with a timeout); `start` only writes the request, and the answer
    is read by `on_readable` when the socket, registered in `attach`'s selector, is readable.
    """

    def __init__(self, host: str, port: int, timeout: float) -> None:
        """Remember where to connect; the connection opens on first use."""
        self._host = host
        self._port = port
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._parser = ResponseParser()
        self.answered_ns = 0  # time.time_ns() when the last response was complete

    def attach(self, selector: selectors.BaseSelector) -> None:
        """Have `selector` watch the connection (now and after any reconnect)."""
        self._selector = selector
        if self._sock is not None:
            selector.register(self._sock, selectors.EVENT_READ, self)

    def start(self, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> None:
        """Write one request; its answer is then read by `on_readable`."""
        sock = self._connection()
        head = [f"{method} {target} HTTP/1.1", f"Host: {self._host}:{self._port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        self._parser = ResponseParser()
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)

    @property
    def answered(self) -> bool:
        """Whether the last request's response is complete."""
        return self._parser.done

    def response(self) -> tuple[int, bytes]:
        """Status and body of the last (complete) response."""
        return self._parser.status or 0, self._parser.body

    def on_readable(self) -> None:
        """Read what the server sent; a close ends a read-until-close body (or is an error)."""
        if self._sock is None:
            return
        try:
            data = self._sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionError:
            data = b""
        if data:
            self._parser.feed(data)
        else:
            self.close()
            self._parser.eof()
        if self._parser.done and not self.answered_ns:
            self.answered_ns = time.time_ns()

    def request(
        self, method: str, target: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, bytes]:
        """Send one request and wait (at most the timeout per read) for its response."""
        self.answered_ns = 0
        self.start(method, target, headers, body)
        while not self._parser.done:
            self.on_readable()  # the socket blocks, with the timeout, until data or close
        return self.response()

    def _connection(self) -> socket.socket:
        """Return the open connection, opening a new one if needed."""
        if self._sock is None:
            self._sock = socket.create_connection((self._host, self._port), self._timeout)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._selector is not None:
                self._selector.register(self._sock, selectors.EVENT_READ, self)
        return self._sock

    def close(self) -> None:
        """Close the connection, if any."""
        if self._sock is not None:
            if self._selector is not None:
                self._selector.unregister(self._sock)
            self._sock.close()
            self._sock = None


def _split_header(line: str) -> tuple[str, str]:
    """Split `Name: value` into a lower-cased name and a stripped value."""
    name, _, value = line.partition(":")
    return name.strip().lower(), value.strip()


class Subscriber:
    """One `/events` stream: its non-blocking socket and the parser of what it receives."""

    __slots__ = ("deadline", "parser", "ready", "sock", "unsent")

    def __init__(
        self, sock: socket.socket, request: bytes, parser: StreamParser, deadline: float
    ) -> None:
        """A connecting stream that still has `request` to send, and until `deadline` to open."""
        self.sock: socket.socket | None = sock
        self.unsent = request
        self.parser = parser
        self.deadline = deadline
        self.ready = False  # the 200 response headers are in


class Fanout:
    """Drives every subscriber socket and the POST connection from one epoll loop."""

    def __init__(
        self,
        options: Options,
        *,
        address: tuple[str, int],
        request: bytes,
        tracker: Tracker,
        pattern: re.Pattern[bytes],
    ) -> None:
        """Nothing is opened yet; `open_subscribers` connects."""
        self._options = options
        self._address = address
        self._request = request
        self._tracker = tracker
        self._pattern = pattern
        self._closing = False
        self.selector: selectors.BaseSelector = (
            selectors.EpollSelector()
            if hasattr(selectors, "EpollSelector")
            else selectors.DefaultSelector()
        )
        self.subscribers: list[Subscriber] = []
        self.errors: list[str] = []
        self.marker_reads = 0  # reads that completed at least one marker
        self.untimestamped_reads = 0  # ... of which carried no kernel timestamp

    def open_subscribers(self) -> None:
        """Open the streams, at most `connect_concurrency` at a time, each within the timeout."""
        total, launched = self._options.subscribers, 0
        pending: set[Subscriber] = set()
        while launched < total or pending:
            while launched < total and len(pending) < self._options.connect_concurrency:
                launched += 1
                try:
                    pending.add(self._connect())
                except OSError as error:
                    self.errors.append(repr(error))
            now = time.monotonic()
            for subscriber in [s for s in pending if s.deadline <= now]:
                self._fail(subscriber, TimeoutError("no response headers within the timeout"))
            pending = {s for s in pending if s.sock is not None and not s.ready}
            if pending:
                wait = min(s.deadline for s in pending) - now
                self._dispatch(self.selector.select(max(0.0, min(wait, 0.1))))
            self.subscribers += [s for s in list(pending) if s.ready]
            pending = {s for s in pending if s.sock is not None and not s.ready}

    def _connect(self) -> Subscriber:
        """Start a non-blocking connect with receive timestamps on."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.setblocking(False)
            code = sock.connect_ex(self._address)
            if code not in (0, errno.EINPROGRESS):
                raise OSError(code, os.strerror(code))
        except OSError:
            sock.close()
            raise
        deadline = time.monotonic() + self._options.connect_timeout
        subscriber = Subscriber(sock, self._request, StreamParser(self._pattern), deadline)
        self.selector.register(sock, selectors.EVENT_WRITE, subscriber)
        return subscriber

    def pump(self, seconds: float, until: Callable[[], bool] | None = None) -> bool:
        """Process socket events for at most `seconds`, or until `until()` holds (returned)."""
        deadline = time.monotonic() + seconds
        while until is None or not until():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return until is None
            self._dispatch(self.selector.select(remaining))
        return True

    def _dispatch(self, events: list[tuple[selectors.SelectorKey, int]]) -> None:
        """Hand each ready socket to its handler."""
        for key, mask in events:
            target = key.data
            if isinstance(target, HttpClient):
                target.on_readable()
            elif mask & selectors.EVENT_WRITE:
                self._send_request(target)
            else:
                self._read(target)

    def _send_request(self, subscriber: Subscriber) -> None:
        """The connect finished (or failed): write the `GET /events` request."""
        sock = subscriber.sock
        if sock is None:
            return
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._fail(subscriber, OSError(code, os.strerror(code)))
            return
        try:
            sent = sock.send(subscriber.unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._fail(subscriber, error)
            return
        subscriber.unsent = subscriber.unsent[sent:]
        if not subscriber.unsent:
            self.selector.modify(sock, selectors.EVENT_READ, subscriber)

    def _read(self, subscriber: Subscriber) -> None:
        """One `recvmsg`: feed the bytes to the parser and record markers with their times."""
        sock = subscriber.sock
        if sock is None:
            return
        try:
            data, ancdata, _, _ = sock.recvmsg(READ_SIZE, ANCILLARY_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._fail(subscriber, error)
            return
        client_ns = time.time_ns()
        if not data:
            self._fail(subscriber, ConnectionError("closed by the server"))
            return
        try:
            indexes = subscriber.parser.feed(data)
        except FanoutError as error:
            self._fail(subscriber, error)
            return
        subscriber.ready = subscriber.parser.headers_done
        if indexes:
            self.marker_reads += 1
            kernel_ns = kernel_time_ns(ancdata)
            if kernel_ns is None:
                self.untimestamped_reads += 1
                kernel_ns = client_ns
            for index in indexes:
                self._tracker.record(index, kernel_ns, client_ns)

    def _fail(self, subscriber: Subscriber, error: BaseException) -> None:
        """Close a stream: a connect error before its headers, a disconnect after them."""
        if subscriber.sock is None:
            return
        self.selector.unregister(subscriber.sock)
        subscriber.sock.close()
        subscriber.sock = None
        if not subscriber.ready:
            self.errors.append(repr(error))
        elif not self._closing:
            self._tracker.disconnect(subscriber.parser.seen)

    def close(self) -> None:
        """Close every stream (end of the benchmark) and the selector."""
        self._closing = True
        for subscriber in self.subscribers:
            self._fail(subscriber, ConnectionError("closed by the client"))
        self.selector.close()


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


def fetch_token(client: HttpClient) -> str:
    """Get a bearer token with the client-credentials grant."""
    body = urlencode(DEFAULT_FORM).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, payload = client.request("POST", "/token", headers, body)
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


def send_broadcasts(
    options: Options,
    fanout: Fanout,
    client: HttpClient,
    *,
    token: str,
    run_id: str,
    tracker: Tracker,
) -> list[BroadcastTiming]:
    """Send the broadcasts one at a time, each awaited until every live subscriber has it."""
    headers = {"Authorization": f"Bearer {token}"}
    timings = []

    def finished(index: int) -> bool:
        return client.answered and tracker.complete(index)

    for index in range(options.broadcasts):
        if tracker.alive <= 0:
            raise FanoutError("the server closed every stream")
        target = "/broadcast?" + urlencode({"message": f"fanout {marker(run_id, index)}"})
        client.answered_ns = 0
        sent_ns = time.time_ns()
        client.start("POST", target, headers)
        done = fanout.pump(options.broadcast_timeout, functools.partial(finished, index))
        if not client.answered:
            raise FanoutError(f"POST /broadcast not answered within {options.broadcast_timeout} s")
        status, payload = client.response()
        if status >= 300:
            raise FanoutError(f"POST /broadcast answered {status}: {payload[:200]!r}")
        timings.append(_timing(index, sent_ns, client.answered_ns, tracker, complete=done))
        fanout.pump(options.gap)
    return timings


def _timing(
    index: int, sent_ns: int, answered_ns: int, tracker: Tracker, *, complete: bool
) -> BroadcastTiming:
    """One broadcast's times in ms since `sent_ns` (None for those of an incomplete one)."""

    def since_sent(ns: int, *, valid: bool = complete) -> float | None:
        return (ns - sent_ns) / NS_PER_MS if valid else None

    return BroadcastTiming(
        index=index,
        post_ms=(answered_ns - sent_ns) / NS_PER_MS,
        delivered_ms=since_sent(tracker.last_kernel_ns[index]),
        first_ms=since_sent(tracker.first_kernel_ns[index], valid=tracker.counts[index] > 0),
        client_ms=since_sent(tracker.last_client_ns[index]),
        received=tracker.counts[index],
    )


def marker(run_id: str, index: int) -> str:
    """The unique, URL- and JSON-safe marker of broadcast `index` in this run."""
    return f"bm{run_id}x{index}z"


def marker_pattern(run_id: str) -> re.Pattern[bytes]:
    """A regex that finds this run's markers in raw bytes, capturing the broadcast index."""
    return re.compile(rb"bm" + run_id.encode("ascii") + rb"x(\d+)z")


def _server_pids(options: Options) -> list[int]:
    """Every server process given (none: no memory readings)."""
    return [*([options.server_pid] if options.server_pid is not None else []), *options.other_pids]


def _rss(pids: Sequence[int]) -> int | None:
    """Server RSS in KiB, summed over its processes, or None when no pid was given."""
    total = 0
    for pid in pids:
        try:
            total += read_rss_kib(pid)
        except OSError:  # a process without memory of its own (say, one that just exited)
            continue
    return total if pids else None


def run_fanout(options: Options) -> dict[str, object]:
    """Run the whole fan-out benchmark and return its results as a JSON-ready dict."""
    split = urlsplit(options.base_url)
    host, port = split.hostname or "127.0.0.1", split.port or 80
    raise_fd_limit(options.subscribers + FD_HEADROOM)
    client = HttpClient(host, port, max(options.broadcast_timeout, options.connect_timeout))
    tracker = Tracker(options.broadcasts)
    try:
        token = fetch_token(client)
        run_id = secrets.token_hex(4)
        fanout = Fanout(
            options,
            address=(host, port),
            request=events_request(host, port, token),
            tracker=tracker,
            pattern=marker_pattern(run_id),
        )
        client.attach(fanout.selector)
        pids = _server_pids(options)
        rss = {"before": _rss(pids)}
        sockets_before = descriptor_counts(pids) if len(pids) > 1 else {}
        sockets_connected: dict[str, int] = {}
        opened = time.monotonic()
        try:
            fanout.open_subscribers()
            connect_s = time.monotonic() - opened
            if not fanout.subscribers:
                first = fanout.errors[0] if fanout.errors else "unknown error"
                raise FanoutError(f"no stream opened: {first}")
            tracker.start(len(fanout.subscribers))
            fanout.pump(0.5)
            rss["connected"] = _rss(pids)
            sockets_connected = descriptor_counts(pids) if len(pids) > 1 else {}
            timings = send_broadcasts(
                options, fanout, client, token=token, run_id=run_id, tracker=tracker
            )
            fanout.pump(0.2)
            rss["after_broadcasts"] = _rss(pids)
        finally:
            client.close()  # before the selector it is registered in goes
            fanout.close()
    finally:
        client.close()
    time.sleep(0.5)
    rss["after_close"] = _rss(pids)
    result = summarize(options, tracker, timings, fanout=fanout, connect_s=connect_s, rss=rss)
    if sockets_connected:
        # sockets each process gained while the streams opened: how the kernel spread them
        result["streams_by_process"] = {
            pid: count - sockets_before.get(pid, 0) for pid, count in sockets_connected.items()
        }
    return result


def summarize(
    options: Options,
    tracker: Tracker,
    timings: list[BroadcastTiming],
    *,
    fanout: Fanout,
    connect_s: float,
    rss: dict[str, int | None],
) -> dict[str, object]:
    """Turn raw timings, counters and memory readings into the result dict."""
    connected = tracker.expected
    lost = sum(connected - count for count in tracker.counts)
    delivered = [t.delivered_ms for t in timings if t.delivered_ms is not None]
    client = [t.client_ms for t in timings if t.client_ms is not None]
    first = [t.first_ms for t in timings if t.first_ms is not None]
    errors = fanout.errors
    result: dict[str, object] = {
        "subscribers": options.subscribers,
        "connected": connected,
        "connect_failures": len(errors),
        "connect_errors_sample": errors[:5],
        "connect_seconds": round(connect_s, 3),
        "broadcasts": options.broadcasts,
        "broadcasts_complete": len(delivered),
        "lost": lost,
        "ok": lost == 0 and not errors and len(delivered) == options.broadcasts,
        "disconnected_during_run": tracker.disconnected,
        "latency_clock": "kernel receive timestamp (SO_TIMESTAMPNS)",
        "p50_ms": _stat(delivered, 50),
        "p99_ms": _stat(delivered, 99),
        "max_ms": _stat(delivered, 100),
        "first_p50_ms": _stat(first, 50),
        "client_p50_ms": _stat(client, 50),
        "client_p99_ms": _stat(client, 99),
        "client_max_ms": _stat(client, 100),
        "post_p50_ms": _stat([t.post_ms for t in timings], 50),
        "marker_reads": fanout.marker_reads,
        "untimestamped_reads": fanout.untimestamped_reads,
        "per_broadcast_ms": [_round(t.delivered_ms) for t in timings],
        "client_per_broadcast_ms": [_round(t.client_ms) for t in timings],
        "rss_kib": rss,
    }
    result.update(memory_per_stream(rss, connected))
    return result


def _stat(values: Sequence[float], q: float) -> float | None:
    """Rounded nearest-rank percentile, None for no values."""
    return _round(percentile(values, q)) if values else None


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
    parser.add_argument(
        "--server-pid",
        type=int,
        action="append",
        default=[],
        help="server process id, for VmRSS readings; repeat it for every process of a server"
        " with workers (memory is summed, streams per process counted)",
    )
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
    if not 1 <= args.connect_concurrency <= 10000:
        parser.error("--connect-concurrency must be between 1 and 10000")
    for flag in ("broadcast_timeout", "connect_timeout"):
        if not 0 < getattr(args, flag) <= 3600:
            parser.error(f"--{flag.replace('_', '-')} must be in (0, 3600] seconds")
    if not 0 <= args.gap <= 60:
        parser.error("--gap must be in [0, 60] seconds")
    return args


def options_from(args: argparse.Namespace) -> Options:
    """Build the typed options from parsed flags."""
    return Options(
        base_url=args.base_url,
        subscribers=args.subscribers,
        broadcasts=args.broadcasts,
        server_pid=args.server_pid[0] if args.server_pid else None,
        other_pids=tuple(args.server_pid[1:]),
        broadcast_timeout=args.broadcast_timeout,
        connect_timeout=args.connect_timeout,
        connect_concurrency=args.connect_concurrency,
        gap=args.gap,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the JSON result, write `--json-out`."""
    args = parse_args(argv)
    try:
        result = run_fanout(options_from(args))
    except (FanoutError, OSError, ValueError) as error:
        print(f"sse_fanout: {error}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2)
    if args.json_out:
        args.json_out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
