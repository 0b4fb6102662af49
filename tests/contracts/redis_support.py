"""Redis for the contract suites: the real server, a fresh key prefix per test, cleaned after.

The server is the one at ``CALCMCP_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``); the
tests fail, never skip, when it is not there. Failure tests start servers of their own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from src.adapters.redis import connect

REDIS_URL = os.environ.get("CALCMCP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class Keyspace:
    """A client and the prefix this test's keys live under."""

    client: Redis
    prefix: str


@contextlib.asynccontextmanager
async def keyspace(url: str = REDIS_URL) -> AsyncIterator[Keyspace]:
    """A unique prefix on the shared server; every key under it is deleted afterwards."""
    client = connect(url)
    prefix = f"calcmcp-test:{uuid.uuid4().hex}:"
    try:
        yield Keyspace(client, prefix)
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (as of now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """A redis-server of the test's own, on a free port, started and stopped at will.

    Args:
        directory: where it may write (its append-only file, when ``persist``).
        persist: keep data across restarts (append-only file, synced on every write).
    """

    def __init__(self, directory: Path, *, persist: bool = False) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._persist = persist
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it answers."""
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed"
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self._persist else []
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += aof or ["--appendonly", "no"]
        command += ["--daemonize", "no", "--dir", str(self._directory)]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.02)
        raise AssertionError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """Stop it (it closes every client connection) and wait until it is gone."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None
