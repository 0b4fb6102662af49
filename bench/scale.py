"""Scale-out targets: `calcmcp serve --workers N` on Redis, and what they need around them.

- `scale_target(name, python, workers, redis_url)`: the target (not pinned: the workers need
  every core), with a fresh data directory and a Redis key prefix unique to each server start;
- Redis helpers (redis-py, from calcmcp's own environment) to check Redis is there, read its
  CPU time (`INFO cpu`) and delete a server's keys afterwards;
- process-tree helpers: every process of a server (the supervisor and its workers), their CPU
  time (`/proc/PID/stat`), and which of them holds a given TCP connection (`/proc/net/tcp`), used
  to wait until every worker serves before measuring;
- `cpu_meter`: cumulative CPU seconds of the server tree, of Redis and of the whole machine,
  sampled around a measured run (see wrkbench.run_wrk).

Linux only (`/proc`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import redis

HOST = "127.0.0.1"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
SCALE_WORKERS = (1, 2, 4)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
Meter = Callable[[], dict[str, float]]
"""Cumulative CPU seconds by consumer (`server`, `redis`, `machine`, ...), sampled twice."""


class RedisError(RuntimeError):
    """Redis could not be reached or answered with an error."""


@contextlib.contextmanager
def _redis(url: str) -> Iterator[redis.Redis]:
    """A short-lived redis-py client for `url`, its failures raised as RedisError."""
    client = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
    try:
        yield client
    except redis.RedisError as error:
        raise RedisError(f"Redis at {url}: {error}") from None
    finally:
        client.close()


def redis_ping(url: str) -> None:
    """Raise RedisError unless Redis at `url` answers PING."""
    with _redis(url) as client:
        client.ping()


def redis_cpu_seconds(url: str) -> float:
    """Redis's CPU time so far (user + system, every thread), from `INFO cpu`."""
    with _redis(url) as client:
        info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def forget_keys(url: str, prefix: str) -> int:
    """Delete every key under `prefix` (a server's state after its run); how many."""
    deleted = 0
    with _redis(url) as client:
        batch: list[bytes] = []
        for key in client.scan_iter(match=prefix + "*", count=1000):
            batch.append(key)
            if len(batch) == 1000:
                deleted += client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += client.unlink(*batch)
    return deleted


# --- process trees ----------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The direct children of `pid` (every thread's)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants."""
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += children(current)
    return tree


def workers_of(pid: int) -> list[int]:
    """uvicorn's worker processes under supervisor `pid` (multiprocessing's spawned children,
    not its resource tracker); empty for a single-process server."""
    found = []
    for child in children(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            found.append(child)
    return found


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time of the live processes `pids` (threads included)."""
    total = 0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / CLOCK_TICKS


def machine_seconds() -> dict[str, float]:
    """CPU time of every core since boot (/proc/stat): `machine` (busy: user, nice, system,
    irq, softirq), `softirq` (of which: the kernel's network work, loopback TCP included,
    mostly not charged to any process) and `steal` (taken by the hypervisor, not busy here)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return {
        "machine": (user + nice + system + irq + softirq) / CLOCK_TICKS,
        "softirq": softirq / CLOCK_TICKS,
        "steal": steal / CLOCK_TICKS,
    }


def cpu_meter(root_pid: int, redis_url: str | None) -> Meter:
    """Cumulative CPU seconds of the server tree under `root_pid` (looked up at each sample),
    of Redis (if any) and of the machine."""

    def sample() -> dict[str, float]:
        reading = {"server": cpu_seconds(process_tree(root_pid)), **machine_seconds()}
        if redis_url:
            reading["redis"] = redis_cpu_seconds(redis_url)
        return reading

    return sample


def socket_holder(server_port: int, client_port: int, pids: Sequence[int]) -> int | None:
    """Which of `pids` holds the server side of the loopback TCP connection from `client_port`."""
    wanted = (f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}")
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if (fields[1], fields[2]) == wanted:
            inode = fields[9]
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                if os.readlink(descriptor) == target:
                    return pid
            except OSError:
                continue
    return None


def wait_workers_serving(port: int, supervisor: int, workers: int, timeout: float) -> list[int]:
    """Wait until `workers` worker processes exist and each has answered a request; their pids.

    The supervisor answers nothing itself and its workers share one listening socket, so a
    server can answer `GET /` while some workers are still importing the app. Each probe is a
    new connection (the kernel picks the worker) held until its worker is known.
    """
    deadline = time.monotonic() + timeout
    served: set[int] = set()
    while time.monotonic() < deadline:
        pids = workers_of(supervisor)
        if len(pids) == workers and served >= set(pids):
            return sorted(pids)
        if len(pids) < workers:
            time.sleep(0.1)
            continue
        with socket.create_connection((HOST, port), timeout=2.0) as probe:
            probe.sendall(f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
            try:
                if probe.recv(16).startswith(b"HTTP/1.1"):
                    holder = socket_holder(port, probe.getsockname()[1], pids)
                    if holder is not None:
                        served.add(holder)
            except OSError:
                pass
        time.sleep(0.02)
    raise TimeoutError(f"not every one of {workers} workers answered within {timeout:.0f} s")


def descriptor_counts(pids: Sequence[int]) -> dict[str, int]:
    """Open sockets per process (to see how the kernel spread the connections)."""
    counts = {}
    for pid in pids:
        try:
            descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        total = 0
        for descriptor in descriptors:
            try:
                total += os.readlink(descriptor).startswith("socket:")
            except OSError:
                continue
        counts[str(pid)] = total
    return counts


def unique_prefix(name: str) -> str:
    """A Redis key prefix for one run of target `name`; `{port}` makes it unique per server."""
    return f"calcmcp-bench:{name}:{secrets.token_hex(4)}:{{port}}:"


def scale_environment(name: str, redis_url: str) -> dict[str, str]:
    """The settings of a scale target (`{port}` substituted at start)."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    return {
        "CALCMCP_PUBLIC_URL": f"http://{HOST}:{{port}}",
        "CALCMCP_DATA_DIR": str(data_dir),
        "CALCMCP_REDIS_URL": redis_url,
        "CALCMCP_REDIS_PREFIX": unique_prefix(name),
        "CALCMCP_TOKEN_RATE": "1000000000",
        "CALCMCP_TOKEN_BURST": "1000000000",
        "CALCMCP_SSE_MAX_STREAMS_PER_CLIENT": "10000",
        "CALCMCP_ACCESS_LOG": "false",  # as `--no-access-log` does for the other targets
        "CALCMCP_LOG_LEVEL": "warning",
    }
