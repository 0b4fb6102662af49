"""Same-run benchmark of calcmcp against the reference (`seed`) and a bare Litestar endpoint.

For every target it starts a fresh one-worker uvicorn server per benchmark, pinned to one core,
drives it from another core and stops it:

- `token`: `POST /token` (form body) with wrk: requests/s, p50, p99;
- `add`: authenticated `POST /calculator/add?a=5&b=3` with wrk: requests/s, p50, p99;
- `sse`: `bench/sse_fanout.py`: S open `/events` streams, B broadcasts, time until each one
  was delivered to every stream (kernel receive timestamps; p50/p99/max), and, secondary,
  until the client had read it everywhere; lost events, server RSS per open stream;
- `mcp` (calcmcp only): authenticated MCP `tools/call` of add(5, 3) over Streamable HTTP
  (stateless 2026-07-28, JSON response) with wrk: requests/s, p50, p99, and the ratio to the
  same target's REST `add` of the run;
- `stdio` (calcmcp only, no server): `bench/stdiobench.py`: spawn `calcmcp stdio` (and
  `python -m src stdio`) pinned to the server core, time to the answer of one `tools/list`.

Prints a table with ratios against `seed` and `bare` and writes bench/results/<timestamp>.json.
Run from the repository root: `.venv/bin/python bench/run.py --help`.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from report import derive, goals, ratios, render, write_json
from report import flatten as flatten_metrics
from scale import DEFAULT_REDIS_URL, RedisError, cpu_meter, redis_ping
from stdiobench import StdioBenchError, StdioSettings, bench_stdio
from targets import (
    ALL_BENCHMARKS,
    BENCH_DIR,
    CALCMCP_PYTHON,
    DEFAULT_SEED_DIR,
    REPO_ROOT,
    SERVERLESS_BENCHMARKS,
    Server,
    ServerError,
    Target,
    default_targets,
    raise_own_fd_limit,
    start_server,
    stop_server,
)
from wrkbench import (
    WRK_MISSING,
    WrkError,
    WrkSettings,
    bench_add,
    bench_mcp,
    bench_token,
    wrk_version,
)

FANOUT_SCRIPT = BENCH_DIR / "sse_fanout.py"
DEFAULT_TARGETS = ("seed", "bare", "calcmcp", "calcmcp-hs256")
SCALE_TARGETS = ("calcmcp-w1", "calcmcp-w2", "calcmcp-w4")
SCALE_BENCH = "add,sse"
SCALE_SUBSCRIBERS = 5000
DEFAULT_SUBSCRIBERS = 1000
WRK_BENCHMARKS = frozenset({"token", "add", "mcp"})


class BenchmarkError(RuntimeError):
    """One benchmark of one target failed."""


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that shapes a run."""

    benchmarks: tuple[str, ...]
    wrk: WrkSettings
    subscribers: int
    broadcasts: int
    broadcast_timeout: float
    server_cpu: int
    client_cpu: int
    stdio_runs: int = 20
    stdio_warmup: int = 2
    connect_concurrency: int = 200


@dataclasses.dataclass
class Outcome:
    """What one target produced: results per benchmark and any errors."""

    results: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    errors: list[str] = dataclasses.field(default_factory=list)


def run_benchmark(name: str, server: Server, config: Config) -> dict[str, Any]:
    """Run one benchmark against a running server."""
    meter = cpu_meter(server.pid, server.target.redis_url)
    if name == "token":
        result = bench_token(server.base_url, config.wrk, meter)
    elif name == "add":
        result = bench_add(server.base_url, config.wrk, server.target.auth, meter)
    elif name == "mcp":
        result = bench_mcp(server.base_url, config.wrk, meter)
    else:
        return run_fanout(server, config)
    return {**dataclasses.asdict(result), "errors": result.errors}


def run_fanout(server: Server, config: Config) -> dict[str, Any]:
    """Run bench/sse_fanout.py pinned to the client core and return its JSON result."""
    command = [
        "taskset",
        "-c",
        str(config.client_cpu),
        sys.executable,
        str(FANOUT_SCRIPT),
        "--base-url",
        server.base_url,
        "--subscribers",
        str(config.subscribers),
        "--broadcasts",
        str(config.broadcasts),
        *(arg for pid in server.pids for arg in ("--server-pid", str(pid))),
        "--broadcast-timeout",
        str(config.broadcast_timeout),
        "--connect-concurrency",
        str(config.connect_concurrency),
    ]
    budget = 120 + config.broadcasts * (config.broadcast_timeout + 1)
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=budget)
    if done.returncode not in (0, 1):
        raise BenchmarkError(f"sse_fanout failed: {done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def run_target(target: Target, config: Config, log_dir: Path) -> Outcome:
    """Prepare the target, then run each selected benchmark on a fresh server."""
    outcome = Outcome()
    try:
        if target.prepare is not None:
            target.prepare()
    except (ServerError, subprocess.SubprocessError, OSError) as error:
        outcome.errors.append(f"prepare: {error}")
        return outcome
    for name in (b for b in config.benchmarks if b in target.benchmarks):
        print(f"[{target.name}] {name} ...", flush=True)
        try:
            if name in SERVERLESS_BENCHMARKS:
                outcome.results[name] = run_stdio(target, config)
            else:
                outcome.results[name] = run_on_fresh_server(target, name, config, log_dir)
        except ServerError as error:
            outcome.errors.append(f"{name}: {error}")
            break
        except (
            BenchmarkError,
            WrkError,
            StdioBenchError,
            OSError,
            ValueError,
            subprocess.SubprocessError,
        ) as error:
            outcome.errors.append(f"{name}: {error}")
        else:
            print(f"[{target.name}] {name}: {summary_line(outcome.results[name])}", flush=True)
    return outcome


def run_on_fresh_server(target: Target, name: str, config: Config, log_dir: Path) -> dict[str, Any]:
    """Start the target's server, run one benchmark, stop the server."""
    server = start_server(target, config.server_cpu, log_dir / f"{target.name}-{name}.log")
    try:
        return run_benchmark(name, server, config)
    finally:
        stop_server(server)


def run_stdio(target: Target, config: Config) -> dict[str, Any]:
    """Cold start of the target's stdio commands (no server of its own to start)."""
    if not target.stdio:
        raise BenchmarkError(f"{target.name} has no stdio command")
    settings = StdioSettings(
        runs=config.stdio_runs,
        warmup=config.stdio_warmup,
        server_cpu=config.server_cpu,
        client_cpu=config.client_cpu,
    )
    return bench_stdio(target.stdio, str(CALCMCP_PYTHON), settings)


def summary_line(result: dict[str, Any]) -> str:
    """A short progress line for one benchmark result."""
    if "servers" in result:  # stdio
        names = [*result["servers"], "sdk_import", "python"]
        return "; ".join(
            f"{name} p50 {result[name]['p50_ms']:.0f} ms, p99 {result[name]['p99_ms']:.0f} ms"
            for name in names
            if result.get(name)
        )
    if "rps" in result:
        cpu = result.get("cpu") or {}
        used = ", ".join(f"{k.removesuffix('_cores')} {v:.2f}" for k, v in cpu.items())
        return (
            f"{result['rps']:,.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
            f"p99 {result['p99_ms']:.2f} ms, errors {result['errors']}"
            + (f"; cores used: {used}" if used else "")
        )
    spread = result.get("streams_by_process")
    return (
        f"{result['connected']} streams, delivered p50 {result['p50_ms']} ms, "
        f"p99 {result['p99_ms']} ms (read by client: p50 {result.get('client_p50_ms')} ms, "
        f"p99 {result.get('client_p99_ms')} ms), lost {result['lost']}, "
        f"{result['rss_per_stream_kib']} KiB/stream"
        + (f"; streams per process: {spread}" if spread else "")
    )


def build_targets(args: argparse.Namespace) -> list[Target]:
    """The selected targets, with `--target` and `--cwd` overrides applied."""
    known = default_targets(args.seed_dir, args.redis_url)
    custom = dict(_pair(item, "--target") for item in args.target)
    for name, command in custom.items():
        base = known.get(name)
        known[name] = (
            dataclasses.replace(base, command=command, prepare=None)
            if base
            else Target(name=name, command=command, cwd=REPO_ROOT)
        )
    for name, folder in (_pair(item, "--cwd") for item in args.cwd):
        if name not in known:
            raise SystemExit(f"--cwd: unknown target {name!r}")
        known[name] = dataclasses.replace(known[name], cwd=Path(folder))
    if args.targets:
        selected = args.targets.split(",")
    else:
        selected = [*(SCALE_TARGETS if args.scale else DEFAULT_TARGETS), *custom]
    unknown = [name for name in selected if name not in known]
    if unknown:
        raise SystemExit(f"unknown target(s): {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[name] for name in dict.fromkeys(selected)]


def _pair(item: str, flag: str) -> tuple[str, str]:
    """Split `NAME=VALUE`."""
    name, sep, value = item.partition("=")
    if not sep or not name or not value:
        raise SystemExit(f"{flag} expects NAME=VALUE, got {item!r}")
    return name, value


def preflight(config: Config, targets: Sequence[Target] = ()) -> None:
    """Check the tools, the machine and any Redis the targets need before starting anything."""
    if shutil.which("taskset") is None:
        raise SystemExit("taskset is missing (Debian package util-linux)")
    if WRK_BENCHMARKS & set(config.benchmarks) and shutil.which("wrk") is None:
        raise SystemExit(WRK_MISSING)
    cpus = os.cpu_count() or 1
    if max(config.server_cpu, config.client_cpu) >= cpus:
        raise SystemExit(f"only {cpus} CPU(s): pass --server-cpu/--client-cpu within 0..{cpus - 1}")
    if config.server_cpu == config.client_cpu:
        print("warning: server and load generator share a core", file=sys.stderr)
    for target in targets:
        if not target.pinned:
            print(
                f"note: {target.name} runs on every core ({target.workers} worker(s)): wrk and the"
                f" SSE client, on core {config.client_cpu}, share it with the server",
                file=sys.stderr,
            )
    for url in sorted({t.redis_url for t in targets if t.redis_url}):
        try:
            redis_ping(url)
        except (RedisError, OSError) as error:
            raise SystemExit(f"Redis is needed by the scale targets: {error}") from None
    limit = raise_own_fd_limit()
    if "sse" in config.benchmarks and limit < config.subscribers + 64:
        raise SystemExit(
            f"open-file hard limit {limit} is too low for {config.subscribers} streams"
        )


def machine_info(benchmarks: Sequence[str]) -> dict[str, Any]:
    """Where and with what the numbers were taken."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "wrk": wrk_version() if WRK_BENCHMARKS & set(benchmarks) else None,
        "calcmcp_commit": _git_commit(),
        "calcmcp_uncommitted": _git_dirty(),
        "loadavg_end": load_average(),
    }


def cpu_busy(seconds: float = 1.0) -> float | None:
    """How many cores' worth of CPU time was spent outside idle over `seconds` (/proc/stat):
    anything much above 0 before a run is someone else's work, and it will show in the numbers."""

    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]) - idle, sum(fields[:8])

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 == total0:
        return None
    return round((busy1 - busy0) / (total1 - total0) * (os.cpu_count() or 1), 2)


def load_average() -> str | None:
    """/proc/loadavg: anything else busy on the machine shows up here."""
    try:
        return Path("/proc/loadavg").read_text(encoding="ascii").strip()
    except OSError:
        return None


def _git_dirty() -> list[str] | None:
    """Files of the working tree that differ from HEAD (the commit alone does not say what ran)."""
    done = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    return [line[3:] for line in done.stdout.splitlines()] if done.returncode == 0 else None


def _cpu_model() -> str | None:
    """The CPU model name from /proc/cpuinfo."""
    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if "model name" in line), None)


def _git_commit() -> str | None:
    """The repository's HEAD commit, if there is one."""
    done = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line flags."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n", 1)[0], formatter_class=argparse.RawTextHelpFormatter
    )
    add = parser.add_argument
    add(
        "--targets",
        help=f"comma-separated targets to run (default: {','.join(DEFAULT_TARGETS)}"
        " plus any --target)",
    )
    add(
        "--target",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="add a target or replace a default one's command; {port} is substituted, e.g.\n"
        "--target 'calcmcp=.venv/bin/python -m uvicorn --factory src.bootstrap:create_app "
        "--host 127.0.0.1 --port {port} --no-access-log'",
    )
    add("--cwd", action="append", default=[], metavar="NAME=DIR", help="a target's working dir")
    add(
        "--seed-dir",
        type=Path,
        default=Path(os.environ.get("CALCMCP_SEED_DIR", DEFAULT_SEED_DIR)),
        help="the reference implementation (default: %(default)s)",
    )
    add(
        "--bench",
        help=f"benchmarks to run (default: {','.join(ALL_BENCHMARKS)};"
        f" with --scale: {SCALE_BENCH})",
    )
    add(
        "--scale",
        action="store_true",
        help="scale-out preset: targets calcmcp-w1,calcmcp-w2,calcmcp-w4 (calcmcp serve"
        f" --workers N on Redis), --bench {SCALE_BENCH}, --subscribers {SCALE_SUBSCRIBERS}"
        " (each unless given)",
    )
    add(
        "--redis-url",
        default=os.environ.get("CALCMCP_BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help="the Redis of the calcmcp-wN targets (default: %(default)s)",
    )
    add("--connections", type=int, default=32, help="wrk connections (default: %(default)s)")
    add("--duration", type=float, default=10.0, help="wrk seconds per run (default: %(default)s)")
    add("--warmup", type=float, default=2.0, help="wrk warm-up seconds (default: %(default)s)")
    add("--threads", type=int, default=1, help="wrk threads (default: %(default)s)")
    add(
        "--subscribers",
        type=int,
        help=f"SSE streams, up to 10000 (default: {DEFAULT_SUBSCRIBERS};"
        f" with --scale: {SCALE_SUBSCRIBERS})",
    )
    add("--broadcasts", type=int, default=20, help="SSE broadcasts (default: %(default)s)")
    add(
        "--connect-concurrency",
        type=int,
        default=200,
        help="SSE streams being opened at once (default: %(default)s)",
    )
    add(
        "--broadcast-timeout",
        type=float,
        default=30.0,
        help="seconds per broadcast (default: %(default)s)",
    )
    add(
        "--stdio-runs",
        type=int,
        default=20,
        help="stdio cold starts counted per command (default: %(default)s)",
    )
    add(
        "--stdio-warmup",
        type=int,
        default=2,
        help="stdio cold starts first, not counted (default: %(default)s)",
    )
    add("--server-cpu", type=int, default=0, help="core for the server (default: %(default)s)")
    add(
        "--client-cpu",
        type=int,
        default=1,
        help="core for wrk and the SSE client (default: %(default)s)",
    )
    add("--results-dir", type=Path, default=BENCH_DIR / "results", help="default: %(default)s")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> Config:
    """Validate the flags into a Config."""
    if args.bench is None:
        args.bench = SCALE_BENCH if args.scale else ",".join(ALL_BENCHMARKS)
    if args.subscribers is None:
        args.subscribers = SCALE_SUBSCRIBERS if args.scale else DEFAULT_SUBSCRIBERS
    benchmarks = tuple(b for b in args.bench.split(",") if b)
    bad = [b for b in benchmarks if b not in ALL_BENCHMARKS]
    if bad or not benchmarks:
        raise SystemExit(f"--bench: choose from {','.join(ALL_BENCHMARKS)}")
    if not 1 <= args.subscribers <= 10000:
        raise SystemExit("--subscribers must be between 1 and 10000")
    if not 1 <= args.connect_concurrency <= 10000:
        raise SystemExit("--connect-concurrency must be between 1 and 10000")
    if args.stdio_runs < 1 or args.stdio_warmup < 0:
        raise SystemExit("--stdio-runs must be at least 1 and --stdio-warmup at least 0")
    wrk = WrkSettings(
        connections=args.connections,
        duration=args.duration,
        warmup=args.warmup,
        threads=args.threads,
        cpu=args.client_cpu,
    )
    return Config(
        benchmarks=benchmarks,
        wrk=wrk,
        subscribers=args.subscribers,
        broadcasts=args.broadcasts,
        broadcast_timeout=args.broadcast_timeout,
        server_cpu=args.server_cpu,
        client_cpu=args.client_cpu,
        stdio_runs=args.stdio_runs,
        stdio_warmup=args.stdio_warmup,
        connect_concurrency=args.connect_concurrency,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run every selected target, print the report and write the JSON file."""
    args = parse_args(argv)
    config = config_from(args)
    targets = build_targets(args)
    preflight(config, targets)
    started = dt.datetime.now(dt.UTC)
    load_at_start = load_average()
    busy_at_start = cpu_busy()
    if busy_at_start is not None and busy_at_start > 0.2:
        print(
            f"warning: {busy_at_start:.2f} cores busy before the run (load {load_at_start}):"
            " other work will colour the figures",
            file=sys.stderr,
        )
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    log_dir = args.results_dir / "logs" / stamp
    outcomes = {target.name: run_target(target, config, log_dir) for target in targets}
    results = {name: outcome.results for name, outcome in outcomes.items()}
    derive(results)  # MCP against REST, per target
    failures = {name: outcome.errors for name, outcome in outcomes.items() if outcome.errors}
    document = {
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            **machine_info(config.benchmarks),
            "loadavg_start": load_at_start,
            "cores_busy_before": busy_at_start,
        },
        "config": {**dataclasses.asdict(config), "seed_dir": str(args.seed_dir)},
        "targets": {
            t.name: {
                "command": t.command,
                "cwd": str(t.cwd),
                "results": results[t.name],
                "errors": outcomes[t.name].errors,
            }
            for t in targets
        },
        "metrics": flatten_metrics(results),
        "ratios": ratios(results),
        "goals": goals(results),
    }
    out = args.results_dir / f"{stamp}.json"
    write_json(out, document)
    print("\n" + render(results, failures) + f"\n\nresults: {out}\nserver logs: {log_dir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
