"""Cold start of an MCP stdio server: spawn it, send one `tools/list`, time the answer.

Each run spawns the command afresh (pinned to the server core), writes one stateless
2026-07-28 `tools/list` request line to its stdin at once, and times from just before the
spawn until the response line is on its stdout; then closes stdin and waits for it to exit.
Warm-up runs come first and are reported but not counted (the first one compiles bytecode).
For reference it also times, the same way, spawn to exit of `python -c "import <SDK module>"`
(the official MCP SDK's server import alone, if the venv has it) and of `python -c pass`.

By hand, from the repository root (prints JSON):

    .venv/bin/python bench/stdiobench.py --runs 20 --warmup 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import selectors
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sse_fanout import percentile

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
VENV_BIN = REPO_ROOT / ".venv" / "bin"
MCP_META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": MCP_META}}
REQUEST_LINE = json.dumps(TOOLS_LIST, separators=(",", ":")).encode() + b"\n"
LOWLEVEL_MODULE = "mcp.server"
SDK_MODULES = ("mcp.server.fastmcp", "mcp.server.mcpserver", LOWLEVEL_MODULE)
"""The SDK's server entry points, 1.x name first (2.x renamed FastMCP to MCPServer and keeps
a `mcp.server.fastmcp` that raises)."""
DEFAULT_COMMANDS = {
    "calcmcp": f"{shlex.quote(str(VENV_BIN / 'calcmcp'))} stdio",
    "python_m_src": f"{shlex.quote(str(VENV_BIN / 'python'))} -m src stdio",
}
GOAL_MS = 250.0
NS_PER_MS = 1_000_000


class StdioBenchError(RuntimeError):
    """A stdio server did not answer, or answered wrongly."""


@dataclasses.dataclass(frozen=True)
class StdioSettings:
    """How many runs, on which cores, with what patience."""

    runs: int = 20
    warmup: int = 2
    server_cpu: int = 0
    client_cpu: int = 1
    timeout: float = 30.0


def summarize(samples_ms: Sequence[float], warmups_ms: Sequence[float]) -> dict[str, Any]:
    """p50/p99/max (nearest rank: with 20 runs the p99 is the maximum) and the raw samples."""
    return {
        "runs": len(samples_ms),
        "p50_ms": round(percentile(samples_ms, 50), 2),
        "p99_ms": round(percentile(samples_ms, 99), 2),
        "max_ms": round(max(samples_ms), 2),
        "min_ms": round(min(samples_ms), 2),
        "warmup_ms": [round(x, 2) for x in warmups_ms],
        "samples_ms": [round(x, 2) for x in samples_ms],
    }


def check_tools_list(line: bytes) -> None:
    """The response must answer id 1 with a tool list that has `add`."""
    try:
        answer = json.loads(line)
    except ValueError as error:
        raise StdioBenchError(f"not JSON: {line[:300]!r}") from error
    result = answer.get("result") if isinstance(answer, dict) else None
    tools = result.get("tools") if isinstance(result, dict) else None
    if answer.get("id") != 1 or not isinstance(tools, list):
        raise StdioBenchError(f"not a tools/list result: {line[:300]!r}")
    if "add" not in {tool.get("name") for tool in tools if isinstance(tool, dict)}:
        raise StdioBenchError(f"no `add` tool in: {line[:300]!r}")


def spawn_pinned(
    argv: Sequence[str], cpu: int, back_to: int, **popen: Any
) -> subprocess.Popen[bytes]:
    """Start `argv` on core `cpu`: the child inherits this thread's CPU mask when it is
    forked, so the mask is switched for the spawn (no `taskset` exec in the timed path)."""
    os.sched_setaffinity(0, {cpu})
    try:
        return subprocess.Popen(argv, **popen)
    finally:
        os.sched_setaffinity(0, {back_to})


def read_line(fd: int, deadline: float) -> bytes:
    """Read from `fd` until a newline (the answer is one line), EOF or the deadline."""
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise StdioBenchError(f"no response line in time (got {data[:300]!r})")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise StdioBenchError(f"stdout closed before a response line (got {data[:300]!r})")
            data += chunk
    return data.split(b"\n", 1)[0]


def time_to_answer(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, settings: StdioSettings
) -> float:
    """Milliseconds from spawning `argv` to its answer to one `tools/list` line."""
    with tempfile.TemporaryFile() as stderr:
        started = time.perf_counter_ns()
        process = spawn_pinned(
            argv,
            settings.server_cpu,
            settings.client_cpu,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=cwd,
        )
        stdin, stdout = process.stdin, process.stdout
        if stdin is None or stdout is None:  # not with PIPE; for the type checker
            raise StdioBenchError("no pipes")
        try:
            stdin.write(REQUEST_LINE)
            stdin.flush()
            line = read_line(stdout.fileno(), time.monotonic() + settings.timeout)
            answered = time.perf_counter_ns()
            stdin.close()
            process.wait(timeout=settings.timeout)
        except (StdioBenchError, OSError, subprocess.TimeoutExpired) as error:
            process.kill()
            process.wait()
            stderr.seek(0)
            tail = stderr.read().decode(errors="replace")[-2000:]
            raise StdioBenchError(f"{shlex.join(argv)}: {error}\n{tail}") from error
        finally:
            stdout.close()
    check_tools_list(line)
    return (answered - started) / NS_PER_MS


def time_to_exit(
    argv: Sequence[str], env: Mapping[str, str], cwd: Path, settings: StdioSettings
) -> float:
    """Milliseconds from spawning `argv` to its (successful) exit."""
    started = time.perf_counter_ns()
    process = spawn_pinned(
        argv,
        settings.server_cpu,
        settings.client_cpu,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
    )
    try:
        _, err = process.communicate(timeout=settings.timeout)
    except subprocess.TimeoutExpired as error:
        process.kill()
        process.communicate()
        raise StdioBenchError(
            f"{shlex.join(argv)}: still running after {error.timeout} s"
        ) from None
    finished = time.perf_counter_ns()
    if process.returncode != 0:
        raise StdioBenchError(f"{shlex.join(argv)} exited {process.returncode}: {err[-2000:]!r}")
    return (finished - started) / NS_PER_MS


def measure(
    timer: Any, argv: Sequence[str], env: Mapping[str, str], cwd: Path, settings: StdioSettings
) -> dict[str, Any]:
    """Warm-up runs, then the counted ones, summarized."""
    warmups = [timer(argv, env, cwd, settings) for _ in range(settings.warmup)]
    samples = [timer(argv, env, cwd, settings) for _ in range(settings.runs)]
    return {"command": shlex.join(argv), **summarize(samples, warmups)}


def sdk_modules(python: str, env: Mapping[str, str]) -> dict[str, str]:
    """Which SDK server modules import in `python`: `sdk_import` -> the high-level server
    (FastMCP, or MCPServer in 2.x), `sdk_lowlevel_import` -> `mcp.server`; empty without it."""
    found: dict[str, str] = {}
    for module in SDK_MODULES:
        key = "sdk_lowlevel_import" if module == LOWLEVEL_MODULE else "sdk_import"
        if key in found:
            continue
        done = subprocess.run(
            [python, "-c", f"import {module}"],
            capture_output=True,
            env=env,
            check=False,
            timeout=60,
        )
        if done.returncode == 0:
            found[key] = module
    return found


def bench_stdio(
    commands: Mapping[str, str],
    python: str,
    settings: StdioSettings,
    cwd: Path = REPO_ROOT,
    *,
    sdk: bool = True,
) -> dict[str, Any]:
    """Cold start to the first `tools/list` answer for each command (name -> command line),
    with a fresh, empty CALCMCP_DATA_DIR; plus the bare-interpreter reference and, if `sdk`,
    the SDK-import ones.

    This thread's CPU mask is held on the client core while it measures, then restored.
    """
    if settings.runs < 1 or settings.warmup < 0:
        raise StdioBenchError("runs must be at least 1 and warm-up runs at least 0")
    saved = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {settings.client_cpu})
    try:
        with tempfile.TemporaryDirectory(prefix="bench-stdio-") as data_dir:
            env = {**os.environ, "CALCMCP_DATA_DIR": data_dir}
            env.pop("PYTHONDONTWRITEBYTECODE", None)  # warm-ups compile once, as on a desktop
            result: dict[str, Any] = {
                "goal_ms": GOAL_MS,
                "servers": list(commands),
                **{
                    name: measure(time_to_answer, shlex.split(command), env, cwd, settings)
                    for name, command in commands.items()
                },
                "python": measure(time_to_exit, [python, "-c", "pass"], env, cwd, settings),
            }
            for key, module in (sdk_modules(python, env) if sdk else {}).items():
                command = [python, "-c", f"import {module}"]
                result[key] = {
                    "module": module,
                    **measure(time_to_exit, command, env, cwd, settings),
                }
    finally:
        os.sched_setaffinity(0, saved)
    return result


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line flags for running it by hand."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    add = parser.add_argument
    add(
        "--command",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="a stdio server to time (default: calcmcp=.venv/bin/calcmcp stdio and\n"
        "python_m_src=.venv/bin/python -m src stdio)",
    )
    add("--python", default=str(VENV_BIN / "python"), help="for the references (default: venv)")
    add("--runs", type=int, default=20, help="counted runs (default: %(default)s)")
    add("--warmup", type=int, default=2, help="warm-up runs first (default: %(default)s)")
    add("--server-cpu", type=int, default=0, help="core the servers run on (default: 0)")
    add("--client-cpu", type=int, default=1, help="core this timer runs on (default: 1)")
    add("--timeout", type=float, default=30.0, help="seconds per run (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the result as JSON."""
    args = parse_args(argv)
    commands = dict(item.split("=", 1) for item in args.command) or DEFAULT_COMMANDS
    settings = StdioSettings(
        runs=args.runs,
        warmup=args.warmup,
        server_cpu=args.server_cpu,
        client_cpu=args.client_cpu,
        timeout=args.timeout,
    )
    try:
        result = bench_stdio(commands, args.python, settings)
    except StdioBenchError as error:
        print(f"stdiobench: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
