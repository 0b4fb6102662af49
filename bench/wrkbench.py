"""HTTP throughput and latency with wrk: run it pinned to a core, parse its `--latency` output."""

from __future__ import annotations

import dataclasses
import http.client
import json
import re
import resource
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode, urlsplit

BENCH_DIR = Path(__file__).resolve().parent
TOKEN_SCRIPT = BENCH_DIR / "wrk_token.lua"
ADD_SCRIPT = BENCH_DIR / "wrk_add.lua"
MCP_SCRIPT = BENCH_DIR / "wrk_mcp.lua"
ADD_PATH = "/calculator/add?a=5&b=3"
MCP_PATH = "/mcp"
MCP_VERSION = "2026-07-28"
MCP_META = {
    "io.modelcontextprotocol/protocolVersion": MCP_VERSION,
    "io.modelcontextprotocol/clientCapabilities": {},
}
MCP_BODY = {  # what bench/wrk_mcp.lua sends (test_bench.py checks the two agree)
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "add", "arguments": {"a": 5, "b": 3}, "_meta": MCP_META},
}
MCP_BODY_BYTES = json.dumps(MCP_BODY, separators=(",", ":")).encode()
MCP_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": MCP_VERSION,
    "Mcp-Method": "tools/call",
    "Mcp-Name": "add",
}
MCP_METADATA_PATH = "/.well-known/oauth-protected-resource/mcp"
TOKEN_FORM = {
    "grant_type": "client_credentials",
    "client_id": "example_client_id",
    "client_secret": "example_client_secret",
    "scope": "calculator sse",
}
WRK_MISSING = (
    "wrk is not installed. Install it with `apt-get install -y wrk` (Debian/Ubuntu) "
    "or your platform's package manager, or skip the HTTP benchmarks with `--bench sse`."
)
_TIME_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME = r"([\d.]+)(us|ms|s|m|h)"
_SOCKET_ERRORS = r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)"


class WrkError(RuntimeError):
    """wrk could not run, or its output could not be read."""


@dataclasses.dataclass(frozen=True)
class WrkSettings:
    """How hard and how long wrk drives the server."""

    connections: int = 32
    duration: float = 10.0
    warmup: float = 2.0
    threads: int = 1
    timeout: float = 5.0
    cpu: int = 1


@dataclasses.dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    cpu: dict[str, float] | None = None
    """Cores' worth of CPU used during the measured run: `wrk_cores`, and per consumer the
    meter reports (`server_cores`, `redis_cores`, `machine_cores`: everything, anyone's, with
    `softirq_cores` among it; `steal_cores`: taken by the hypervisor)."""

    @property
    def errors(self) -> int:
        """Failed requests of any kind."""
        return self.non_2xx + self.socket_errors


def wrk_path() -> str:
    """The wrk executable, or a WrkError that says how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise WrkError(WRK_MISSING)
    return path


def wrk_version() -> str:
    """wrk's first output line (it prints its version with the usage text)."""
    done = subprocess.run(
        [wrk_path(), "--version"], capture_output=True, text=True, check=False, timeout=10
    )
    return (done.stdout or done.stderr).splitlines()[0].strip()


def to_ms(value: str, unit: str) -> float:
    """Convert one of wrk's formatted times to milliseconds."""
    return float(value) * _TIME_UNITS_MS[unit]


def parse_wrk_output(text: str) -> WrkResult:
    """Read requests/s, p50, p99, counts and errors from wrk's `--latency` output."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.MULTILINE)
    p50 = re.search(rf"^\s+50(?:\.0+)?%\s+{_TIME}\s*$", text, re.MULTILINE)
    p99 = re.search(rf"^\s+99(?:\.0+)?%\s+{_TIME}\s*$", text, re.MULTILINE)
    total = re.search(rf"^\s+(\d+) requests in {_TIME}", text, re.MULTILINE)
    if not (rps and p50 and p99 and total):
        raise WrkError("could not parse wrk output:\n" + text)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sockets = re.search(_SOCKET_ERRORS, text)
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=to_ms(p50.group(1), p50.group(2)),
        p99_ms=to_ms(p99.group(1), p99.group(2)),
        requests=int(total.group(1)),
        seconds=to_ms(total.group(2), total.group(3)) / 1000,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def wrk_command(
    url: str, script: Path, settings: WrkSettings, duration: float, args: list[str]
) -> list[str]:
    """The pinned wrk command line for one run."""
    command = [
        "taskset",
        "-c",
        str(settings.cpu),
        wrk_path(),
        f"-t{settings.threads}",
        f"-c{settings.connections}",
        f"-d{duration:g}s",
        f"--timeout={settings.timeout:g}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    return [*command, "--", *args] if args else command


Meter = Callable[[], dict[str, float]]
"""Cumulative CPU seconds by consumer (e.g. `server`, `redis`, `machine`)."""


def run_wrk(
    url: str, script: Path, settings: WrkSettings, args: list[str], meter: Meter | None = None
) -> WrkResult:
    """A discarded warm-up run (if any), then the measured run, with the CPU that wrk and
    whatever `meter` reads used during the measured run (in cores, see `WrkResult.cpu`)."""
    if settings.warmup > 0:
        _run(wrk_command(url, script, settings, settings.warmup, args), settings.warmup)
    before = meter() if meter else {}
    wrk_before = _children_cpu()
    started = time.monotonic()
    output = _run(wrk_command(url, script, settings, settings.duration, args), settings.duration)
    elapsed = time.monotonic() - started
    wrk_used = _children_cpu() - wrk_before  # wrk is a reaped child (taskset execs it)
    after = meter() if meter else {}
    cpu = {"wrk_cores": round(wrk_used / elapsed, 2)}
    cpu.update({f"{k}_cores": round((after[k] - before[k]) / elapsed, 2) for k in before})
    return dataclasses.replace(parse_wrk_output(output), cpu=cpu)


def _children_cpu() -> float:
    """User + system CPU seconds of this process's reaped children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(command: list[str], duration: float) -> str:
    """Run wrk and return its standard output."""
    done = subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=duration + 60
    )
    if done.returncode != 0:
        raise WrkError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    return done.stdout


def http_request(
    base_url: str, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, bytes]:
    """One plain HTTP request (stdlib), returning status and body."""
    split = urlsplit(base_url)
    connection = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def fetch_token(base_url: str, resource: str | None = None) -> str:
    """Get a bearer token from `POST /token` with the client-credentials grant (for
    `resource`, RFC 8707, if given)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    form = {**TOKEN_FORM, "resource": resource} if resource else TOKEN_FORM
    status, body = http_request(base_url, "POST", "/token", headers, urlencode(form).encode())
    if status != 200:
        raise WrkError(f"POST /token answered {status}: {body[:200]!r}")
    token = json.loads(body).get("access_token")
    if not isinstance(token, str):
        raise WrkError("POST /token gave no access_token")
    return token


def check_add(base_url: str, token: str | None) -> None:
    """Fail early, with the server's answer, if `POST /calculator/add` does not succeed."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, body = http_request(base_url, "POST", ADD_PATH, headers)
    if not 200 <= status < 300:
        raise WrkError(f"POST {ADD_PATH} answered {status}: {body[:200]!r}")


def bench_token(base_url: str, settings: WrkSettings, meter: Meter | None = None) -> WrkResult:
    """Throughput and latency of `POST /token` (form body)."""
    fetch_token(base_url)
    return run_wrk(base_url + "/token", TOKEN_SCRIPT, settings, [], meter)


def bench_add(
    base_url: str, settings: WrkSettings, auth: bool, meter: Meter | None = None
) -> WrkResult:
    """Throughput and latency of `POST /calculator/add?a=5&b=3`, with a bearer token if `auth`."""
    token = fetch_token(base_url) if auth else None
    check_add(base_url, token)
    return run_wrk(base_url + ADD_PATH, ADD_SCRIPT, settings, [token] if token else [], meter)


def mcp_resource(base_url: str) -> str:
    """The MCP endpoint's resource URI, as the server advertises it (RFC 9728 metadata at
    `/.well-known/oauth-protected-resource/mcp`; `<base_url>/mcp` if there is none)."""
    status, body = http_request(base_url, "GET", MCP_METADATA_PATH, {})
    if status == 200:
        resource = json.loads(body).get("resource")
        if isinstance(resource, str) and resource:
            return resource
    return base_url + MCP_PATH


def check_mcp(base_url: str, token: str) -> None:
    """Fail early unless one `tools/call` of add(5, 3) answers 200 with a JSON result of 8."""
    headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
    status, body = http_request(base_url, "POST", MCP_PATH, headers, MCP_BODY_BYTES)
    if status != 200:
        raise WrkError(f"POST {MCP_PATH} tools/call answered {status}: {body[:300]!r}")
    if mcp_call_result(body) != 8:
        raise WrkError(f"POST {MCP_PATH} tools/call add(5, 3) did not give 8: {body[:300]!r}")


def mcp_call_result(body: bytes) -> object:
    """`result.structuredContent.result` of a JSON-RPC response body (None if absent)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    result = answer.get("result") if isinstance(answer, dict) else None
    structured = result.get("structuredContent") if isinstance(result, dict) else None
    return structured.get("result") if isinstance(structured, dict) else None


def bench_mcp(base_url: str, settings: WrkSettings, meter: Meter | None = None) -> WrkResult:
    """Throughput and latency of an authenticated MCP `tools/call` of add(5, 3) (stateless
    2026-07-28 era, JSON response), with a token requested for the MCP endpoint."""
    token = fetch_token(base_url, resource=mcp_resource(base_url))
    check_mcp(base_url, token)
    return run_wrk(base_url + MCP_PATH, MCP_SCRIPT, settings, [token], meter)
