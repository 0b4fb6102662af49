"""Benchmark targets: which server command to run, where, and the life of its process."""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import resource
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from scale import (
    DEFAULT_REDIS_URL,
    SCALE_WORKERS,
    RedisError,
    forget_keys,
    process_tree,
    scale_environment,
    wait_workers_serving,
)
from stdiobench import DEFAULT_COMMANDS as STDIO_COMMANDS

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
DEFAULT_SEED_DIR = REPO_ROOT.parent / "shared" / "reference" / "seed_fastapi"
SEED_VENV = BENCH_DIR / ".venv-seed"
CALCMCP_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
HTTP_BENCHMARKS = ("token", "add", "sse")
"""What any HTTP target runs: the endpoints the reference has too."""
SCALE_BENCHMARKS = ("add", "sse")
"""What the `calcmcp-wN` targets run: authenticated calls per second, broadcast fan-out."""
CALCMCP_BENCHMARKS = (*HTTP_BENCHMARKS, "mcp", "stdio")
ALL_BENCHMARKS = CALCMCP_BENCHMARKS
SERVERLESS_BENCHMARKS = ("stdio",)
"""Benchmarks that start their own processes rather than a server."""
HOST = "127.0.0.1"
UVICORN_FLAGS = "--host 127.0.0.1 --port {port} --no-access-log"


class ServerError(RuntimeError):
    """A server could not be prepared, started or reached."""


@dataclasses.dataclass(frozen=True)
class Target:
    """A named server: a command template (with `{port}`), its folder and what it serves."""

    name: str
    command: str
    cwd: Path
    benchmarks: tuple[str, ...] = HTTP_BENCHMARKS
    auth: bool = True
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    prepare: Callable[[], None] | None = None
    stdio: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """For the `stdio` benchmark: name -> command that speaks MCP on stdin/stdout."""
    pinned: bool = True
    """Run the server on the server core only (`taskset`); False: on every core."""
    workers: int = 1
    """Worker processes under one supervisor: above 1, the harness waits until each serves."""
    redis_url: str | None = None
    """The Redis the target keeps its state in: its keys (`CALCMCP_REDIS_PREFIX`) are deleted
    after each server, and its CPU time is reported."""

    def argv(self, port: int) -> list[str]:
        """The server's argument vector for `port`."""
        return shlex.split(self.command.replace("{port}", str(port)))

    def environment(self, port: int) -> dict[str, str]:
        """The variables this target adds to the environment, `{port}` substituted."""
        return {key: value.replace("{port}", str(port)) for key, value in self.env.items()}


@dataclasses.dataclass
class Server:
    """A running server process started by the harness."""

    target: Target
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        """Where the server listens."""
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        """The server's own process id (the leaf of a wrapper chain such as `sh -c`)."""
        return leaf_pid(self.process.pid)

    @property
    def pids(self) -> list[int]:
        """The server and every process under it (a supervisor's workers)."""
        return process_tree(self.pid)


def default_targets(seed_dir: Path, redis_url: str = DEFAULT_REDIS_URL) -> dict[str, Target]:
    """The built-in targets: the reference `seed`, a `bare` Litestar endpoint, `calcmcp`, and
    `calcmcp-w1`, `-w2`, `-w4` (`calcmcp serve --workers N` on the Redis at `redis_url`)."""
    calcmcp_python = shlex.quote(str(CALCMCP_PYTHON))
    seed_python = shlex.quote(str(SEED_VENV / "bin" / "python"))
    return {
        "seed": Target(
            name="seed",
            command=f"{seed_python} -m uvicorn app.main:app {UVICORN_FLAGS}",
            cwd=seed_dir,
            env={"PYTHONDONTWRITEBYTECODE": "1"},
            prepare=lambda: ensure_seed_venv(seed_dir, SEED_VENV),
        ),
        "bare": Target(
            name="bare",
            command=f"{calcmcp_python} -m uvicorn bare_app:app {UVICORN_FLAGS}",
            cwd=BENCH_DIR,
            benchmarks=("add",),
            auth=False,
        ),
        "calcmcp": calcmcp_target(
            "calcmcp",
            calcmcp_python,
            algorithm="ES256",
            stdio=STDIO_COMMANDS,
        ),
        # stdio is left out here: it verifies no tokens, so the algorithm changes nothing.
        "calcmcp-hs256": calcmcp_target(
            "calcmcp-hs256",
            calcmcp_python,
            algorithm="HS256",
            benchmarks=("token", "add", "mcp"),
        ),
        # what the metrics cost: `calcmcp` with them off (compare its add and mcp in one run)
        "calcmcp-nometrics": calcmcp_target(
            "calcmcp-nometrics",
            calcmcp_python,
            algorithm="ES256",
            benchmarks=("add", "mcp"),
            env={"CALCMCP_METRICS": "false"},
        ),
        # what the access log costs: `calcmcp` with its line per request (the default) written
        "calcmcp-accesslog": calcmcp_target(
            "calcmcp-accesslog",
            calcmcp_python,
            algorithm="ES256",
            benchmarks=("add",),
            env={"CALCMCP_ACCESS_LOG": "true"},
        ),
        **{
            f"calcmcp-w{workers}": scale_target(
                f"calcmcp-w{workers}", calcmcp_python, workers, redis_url
            )
            for workers in SCALE_WORKERS
        },
    }


def scale_target(name: str, python: str, workers: int, redis_url: str) -> Target:
    """`calcmcp serve --workers N` with its state on Redis, on every core (not pinned).

    Run through the `calcmcp serve` command line (as a deployment does), 1 worker included, so
    the three targets differ in their worker count only. Settings as for `calcmcp` (rate limits
    and the per-client stream limit out of reach, the public URL the harness uses), plus the
    Redis URL, a key prefix unique to each server start (deleted when it stops) and log level
    `warning`, which keeps uvicorn's access log off as `--no-access-log` does for the others.
    """
    return Target(
        name=name,
        command=f"{python} -m src serve --workers {workers} --host {HOST} --port {{port}}",
        cwd=REPO_ROOT,
        benchmarks=SCALE_BENCHMARKS,
        env=scale_environment(name, redis_url),
        pinned=False,
        workers=workers,
        redis_url=redis_url,
    )


def calcmcp_target(
    name: str,
    python: str,
    *,
    algorithm: str,
    benchmarks: tuple[str, ...] = CALCMCP_BENCHMARKS,
    stdio: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Target:
    """calcmcp as shipped (audit log and metrics on), with its token signing algorithm and a
    fresh data dir, and its access log off, as the other targets run (`--no-access-log`).

    The /token rate limits are raised out of reach: one load generator from one address would
    otherwise be throttled, which is the limiter working, not the endpoint's throughput. The
    limiter still runs on every request. Likewise the per-client stream limit: the fan-out
    benchmark opens every stream as the one development client (the total limit stays at its
    default, which the largest run reaches exactly). The public URL is the address the harness
    uses, so the resource a token is requested for (`.../mcp`) is the one the server checks.
    `env` adds (or overrides) settings.
    """
    data_dir = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    return Target(
        name=name,
        command=f"{python} -m uvicorn --factory src.bootstrap:create_app {UVICORN_FLAGS}",
        cwd=REPO_ROOT,
        benchmarks=benchmarks if stdio else tuple(b for b in benchmarks if b != "stdio"),
        stdio=stdio or {},
        env={
            "CALCMCP_PUBLIC_URL": f"http://{HOST}:{{port}}",
            "CALCMCP_DATA_DIR": str(data_dir),
            "CALCMCP_JWT_ALGORITHM": algorithm,
            "CALCMCP_TOKEN_RATE": "1000000000",
            "CALCMCP_TOKEN_BURST": "1000000000",
            "CALCMCP_SSE_MAX_STREAMS_PER_CLIENT": "10000",
            "CALCMCP_ACCESS_LOG": "false",
            **(env or {}),
        },
    )


def ensure_seed_venv(seed_dir: Path, venv: Path) -> None:
    """Create `venv` from the seed's requirements.txt unless it is already up to date.

    The seed folder is read-only: only `venv` (under bench/) is written.
    """
    requirements = seed_dir / "requirements.txt"
    if not requirements.is_file():
        raise ServerError(f"no {requirements}: pass --seed-dir")
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = venv / ".requirements.sha256"
    python = venv / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return
    print(f"[seed] installing {requirements} into {venv} ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(requirements)], check=True)
    stamp.write_text(digest + "\n")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def start_server(target: Target, cpu: int, log_path: Path, ready_timeout: float = 60.0) -> Server:
    """Start `target` on a free port, pinned to `cpu` unless it is a multi-core target, and wait
    until it answers HTTP (every one of its workers, if it has several)."""
    port = free_port()
    pinning = ["taskset", "-c", str(cpu)] if target.pinned else []
    argv = [*pinning, *target.argv(port)]
    env = {**os.environ, **target.environment(port)}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            cwd=target.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Server(target, port, process, log_path)
    try:
        wait_ready(server, ready_timeout)
        if target.workers > 1:
            wait_workers_serving(port, server.pid, target.workers, ready_timeout)
    except BaseException:
        stop_server(server)
        raise
    return server


def wait_ready(server: Server, timeout: float) -> None:
    """Poll until the server answers any HTTP response on `/` (a 404 counts as ready)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(
                f"{server.target.name} exited with code {server.process.returncode}:\n"
                + log_tail(server.log_path)
            )
        if answers_http(HOST, server.port):
            return
        time.sleep(0.1)
    raise ServerError(f"{server.target.name} not ready after {timeout:.0f} s")


def answers_http(host: str, port: int) -> bool:
    """Whether something on host:port answers an HTTP request."""
    connection = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return True


def stop_server(server: Server, grace: float = 10.0) -> None:
    """Stop the server: SIGTERM, then SIGKILL after `grace` seconds; then delete its Redis keys."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)
    prefix = server.target.environment(server.port).get("CALCMCP_REDIS_PREFIX")
    if server.target.redis_url and prefix:
        try:
            forget_keys(server.target.redis_url, prefix)
        except (RedisError, OSError) as error:
            print(f"warning: could not delete Redis keys {prefix}*: {error}", file=sys.stderr)


def log_tail(path: Path, lines: int = 20) -> str:
    """The last lines of a server log, for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def leaf_pid(pid: int) -> int:
    """Follow a chain of single children (e.g. `sh -c`, `uv run`) down to the real server."""
    for _ in range(8):
        children = Path(f"/proc/{pid}/task/{pid}/children")
        try:
            kids = children.read_text().split()
        except OSError:
            return pid
        if len(kids) != 1:
            return pid
        pid = int(kids[0])
    return pid


def raise_own_fd_limit() -> int:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit; servers inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return int(hard)
