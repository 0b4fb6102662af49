"""The real server process on a free 127.0.0.1 port, and a strict Server-Sent Events reader.

``start_server`` runs ``python -m src.bootstrap serve`` in a temporary working directory (so no
``.env`` of the developer's leaks in) with a temporary ``CALCMCP_DATA_DIR``, waits until it
answers, and always stops it. Every network call has a timeout.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
DEV_ID, DEV_SECRET = "example_client_id", "example_client_secret"
OTHER_ID, OTHER_SECRET = "other-client", "other-secret-0123456789"
CLIENTS = json.dumps(
    [{"client_id": OTHER_ID, "client_secret": OTHER_SECRET, "scopes": ["calculator", "sse"]}]
)
TIMEOUT = httpx.Timeout(5.0)
START_TIMEOUT = 20.0
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SEED_TOKEN_BODY = (
    b"grant_type=client_credentials&client_id=example_client_id"
    b"&client_secret=example_client_secret&scope=calculator+sse"
)
"""The seed README's token request, byte for byte."""
SEED_CALCULATIONS = [
    ("/calculator/add?a=5&b=3", b'{"operation":"add","a":5,"b":3,"result":8}'),
    ("/calculator/subtract?a=10&b=4", b'{"operation":"subtract","a":10,"b":4,"result":6}'),
    ("/calculator/multiply?a=6&b=7", b'{"operation":"multiply","a":6,"b":7,"result":42}'),
    ("/calculator/divide?a=20&b=5", b'{"operation":"divide","a":20,"b":5,"result":4}'),
]
"""The seed README's four calculator curls and the exact bodies they answer."""


@dataclass
class Server:
    """A running server: its base URL, its process and the file its output goes to."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """What the server wrote so far (for failure messages)."""
        return self.log.read_text(errors="replace")[-4000:]


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    with httpx.Client(timeout=httpx.Timeout(1.0)) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                pytest.fail(f"server exited with {server.process.returncode}:\n{server.output()}")
            try:
                if client.get(f"{server.url}/").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
    pytest.fail(f"server did not answer within {START_TIMEOUT} s:\n{server.output()}")


def stop(server: Server) -> None:
    """Terminate the server (SIGTERM, then SIGKILL after 5 s) and reap it."""
    terminate(server.process)


def terminate(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM ``process``, SIGKILL it if it has not ended within ``grace`` s, and reap it."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def start_server(workdir: Path, **env: str) -> Iterator[Server]:
    """Run the server with ``CALCMCP_*`` settings ``env`` (names without the prefix)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALCMCP_")}
    environ.update(
        PYTHONPATH=str(REPO),
        PYTHONUNBUFFERED="1",
        CALCMCP_DATA_DIR=str(workdir / "data"),
        CALCMCP_PORT=str(port),
        CALCMCP_LOG_LEVEL="warning",
        # one address asks for many tokens here: the rate limit is not what these tests are about
        CALCMCP_TOKEN_RATE="1000",
        CALCMCP_TOKEN_BURST="1000",
    )
    environ.update({f"CALCMCP_{name.upper()}": value for name, value in env.items()})
    log = workdir / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "src.bootstrap", "serve", "--port", str(port)],
            cwd=workdir,
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Server(url=f"http://127.0.0.1:{port}", port=port, process=process, log=log)
    try:
        _wait_until_up(server)
        yield server
    finally:
        stop(server)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server shared by the tests that leave it running: dev client plus ``other-client``."""
    with start_server(tmp_path_factory.mktemp("server"), clients=CLIENTS) as running:
        yield running


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``launch(**settings)``: a server of the test's own, stopped after the test."""
    with ExitStack() as stack:
        count = iter(range(100))

        def start(**env: str) -> Server:
            return stack.enter_context(start_server(tmp_path / f"server-{next(count)}", **env))

        yield start


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the shared server."""
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as client:
        yield client


async def get_token(
    client: httpx.AsyncClient, client_id: str = DEV_ID, secret: str = DEV_SECRET
) -> str:
    """A token with both scopes."""
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "scope": "calculator sse",
    }
    response = await client.post("/token", data=form)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


async def broadcast(client: httpx.AsyncClient, token: str, message: str) -> str:
    """Broadcast ``message`` (as a JSON body); returns its event id."""
    response = await client.post("/broadcast", json={"message": message}, headers=bearer(token))
    assert response.status_code == 200, response.text
    event_id: str = response.json()["event_id"]
    return event_id


# --- Server-Sent Events --------------------------------------------------------------------

_EOL = re.compile(rb"\r\n|\r|\n")


@dataclass
class Block:
    """One blank-line-terminated block of an event stream, as raw lines and as parsed fields."""

    lines: list[bytes]
    fields: list[tuple[str, str]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for raw in self.lines:
            line = raw.decode("utf-8")
            if line.startswith(":"):
                self.comments.append(line[1:].removeprefix(" "))
                continue
            name, _, value = line.partition(":")
            self.fields.append((name, value.removeprefix(" ")))

    def values(self, name: str) -> list[str]:
        """Every value of field ``name``, in order."""
        return [value for key, value in self.fields if key == name]

    def one(self, name: str) -> str | None:
        """The single value of ``name`` (None if absent); fails if the field repeats."""
        found = self.values(name)
        assert len(found) <= 1, f"field {name!r} repeated in {self.lines!r}"
        return found[0] if found else None

    @property
    def id(self) -> str | None:
        return self.one("id")

    @property
    def event(self) -> str | None:
        return self.one("event")

    @property
    def data(self) -> Any:
        """The ``data`` as JSON (this server writes exactly one ``data:`` line per event)."""
        text = self.one("data")
        assert text is not None, f"no data in {self.lines!r}"
        return json.loads(text)


class EventStreamReader:
    """Reads an event stream's blocks from raw bytes, splitting lines as the SSE spec does.

    httpx's own line iterator also splits on other Unicode line breaks, which SSE does not.
    """

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._chunks = response.aiter_raw()
        self._buffer = b""
        self._ended = False

    async def _line(self) -> bytes | None:
        while True:
            match = _EOL.search(self._buffer)
            # a lone CR at the end of the buffer may be the first half of a CRLF
            if match and (match.group() != b"\r" or match.end() < len(self._buffer) or self._ended):
                line = self._buffer[: match.start()]
                self._buffer = self._buffer[match.end() :]
                return line
            if self._ended:
                return None
            try:
                self._buffer += await self._chunks.__anext__()
            except StopAsyncIteration:
                self._ended = True

    async def next_block(self, timeout: float = 5.0) -> Block | None:
        """The next non-empty block, or None when the stream ends; fails after ``timeout`` s."""
        lines: list[bytes] = []
        with anyio.fail_after(timeout):
            while True:
                line = await self._line()
                if line is None:
                    assert not lines, f"stream ended inside a block: {lines!r}"
                    return None
                if line:
                    lines.append(line)
                elif lines:
                    return Block(lines)

    async def next_event(self, timeout: float = 5.0) -> Block:
        """The next block, which must exist."""
        block = await self.next_block(timeout)
        assert block is not None, "the stream ended"
        return block

    async def next_fields(self, timeout: float = 5.0) -> Block:
        """The next block with fields (keep-alive comments are skipped)."""
        with anyio.fail_after(timeout):
            while True:
                block = await self.next_event(timeout)
                if block.fields:
                    return block


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    token: str,
    *,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    retry_ms: int = 3000,
) -> AsyncIterator[EventStreamReader]:
    """Open ``/events``, check its headers and its ``retry:`` preamble, and yield a reader."""
    request_headers = {**bearer(token), "Accept": "text/event-stream", **(headers or {})}
    async with client.stream("GET", "/events", params=params, headers=request_headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].split(";")[0] == "text/event-stream"
        assert response.headers["cache-control"] == "no-cache"
        assert "content-length" not in response.headers
        reader = EventStreamReader(response)
        first = await reader.next_event()
        assert first.lines == [b"retry: %d" % retry_ms]
        yield reader
