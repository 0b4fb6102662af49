"""Results: the metric list, ratios against the baselines, the text table and the JSON file."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

BASELINES = ("seed", "bare")

Results = Mapping[str, Mapping[str, Mapping[str, Any]]]  # target -> benchmark -> field -> value


@dataclasses.dataclass(frozen=True)
class Metric:
    """One reported number: where it lives in a target's results and how to read it."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    ratio: bool = True

    def value(self, results: Mapping[str, Mapping[str, Any]]) -> float | None:
        """This metric's value in one target's results, or None if it was not measured.

        The key is a path: `benchmark.field`, or deeper (`stdio.calcmcp.p50_ms`).
        """
        value: Any = results
        for part in self.key.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        return float(value) if isinstance(value, int | float) else None


METRICS = (
    Metric("token.rps", "POST /token throughput", "req/s", higher_is_better=True),
    Metric("token.p50_ms", "POST /token latency p50", "ms", higher_is_better=False),
    Metric("token.p99_ms", "POST /token latency p99", "ms", higher_is_better=False),
    Metric("token.errors", "POST /token failed requests", "", False, ratio=False),
    Metric("add.rps", "POST /calculator/add throughput", "req/s", higher_is_better=True),
    Metric("add.p50_ms", "POST /calculator/add latency p50", "ms", higher_is_better=False),
    Metric("add.p99_ms", "POST /calculator/add latency p99", "ms", higher_is_better=False),
    Metric("add.errors", "POST /calculator/add failed requests", "", False, ratio=False),
    # Scale-out targets (calcmcp-wN): against calcmcp-w1 of the same run, and where the CPU went
    # during the measured run (cores' worth: 1.0 = one core busy throughout).
    Metric("add.rps_vs_w1", "POST /calculator/add vs calcmcp-w1", "x", True, ratio=False),
    Metric("add.cpu.server_cores", "add: server CPU (all its processes)", "cores", False, False),
    Metric("add.cpu.wrk_cores", "add: wrk CPU", "cores", False, ratio=False),
    Metric("add.cpu.redis_cores", "add: Redis CPU", "cores", False, ratio=False),
    Metric("add.cpu.machine_cores", "add: whole machine CPU (anyone's)", "cores", False, False),
    Metric("add.cpu.softirq_cores", "add: of which kernel softirq", "cores", False, False),
    Metric("add.cpu.steal_cores", "add: stolen by the hypervisor", "cores", False, False),
    # Delivered: kernel receive timestamps on the subscriber sockets (see bench/README.md).
    Metric("sse.connected", "open event streams", "", False, ratio=False),
    Metric("sse.p50_ms", "broadcast delivered to all streams p50", "ms", higher_is_better=False),
    Metric("sse.p99_ms", "broadcast delivered to all streams p99", "ms", higher_is_better=False),
    Metric("sse.max_ms", "broadcast delivered to all streams max", "ms", higher_is_better=False),
    # Read: when the (single-threaded) client had read it on every stream; includes the
    # client's own processing, so secondary and not put in the ratio table.
    Metric("sse.client_p50_ms", "broadcast read by client on all, p50", "ms", False, ratio=False),
    Metric("sse.client_p99_ms", "broadcast read by client on all, p99", "ms", False, ratio=False),
    Metric("sse.rss_per_stream_kib", "server RSS per open stream", "KiB", False),
    Metric("sse.lost", "events lost (subscriber x broadcast)", "", False, ratio=False),
    Metric("sse.connect_failures", "streams that failed to open", "", False, ratio=False),
    # MCP tools/call of add over Streamable HTTP (2026-07-28, JSON), against the same target's
    # REST add of the same run; no baseline serves MCP, so no ratio-table rows.
    Metric("mcp.rps", "MCP tools/call add throughput", "req/s", True, ratio=False),
    Metric("mcp.p50_ms", "MCP tools/call add latency p50", "ms", False, ratio=False),
    Metric("mcp.p99_ms", "MCP tools/call add latency p99", "ms", False, ratio=False),
    Metric("mcp.errors", "MCP tools/call add failed requests", "", False, ratio=False),
    Metric("mcp.rps_vs_rest", "MCP tools/call / REST add throughput", "x", True, ratio=False),
    # Cold start of the stdio server to its first tools/list answer (milliseconds).
    *(
        Metric(f"stdio.{name}.{stat}_ms", f"{label} to 1st tools/list {stat}", "ms", False, False)
        for name, label in (("calcmcp", "calcmcp stdio"), ("python_m_src", "python -m src stdio"))
        for stat in ("p50", "p99", "max")
    ),
    *(
        Metric(f"stdio.{name}.{stat}_ms", f"{label} {stat}", "ms", False, ratio=False)
        for name, label in (
            ("sdk_import", "reference: import SDK FastMCP/MCPServer"),
            ("sdk_lowlevel_import", "reference: import mcp.server"),
            ("python", "reference: python -c pass"),
        )
        for stat in ("p50", "p99")
    ),
)
MCP_GOAL = 0.8
"""MCP tools/call should reach at least this share of the REST add's requests/s."""
SCALE_BASE = "calcmcp-w1"
SCALE_GOALS = {2: 1.7}
"""Workers -> least REST add throughput against one worker (2 cores: 2 workers, 1.7x)."""
FANOUT_GOAL_MS = 150.0
FANOUT_GOAL_STREAMS = 5000
"""A broadcast reaches 5,000 streams spread over the workers within 150 ms at p99."""


def derive(results: Mapping[str, Mapping[str, dict[str, Any]]]) -> None:
    """Add to each target's `mcp` result its comparison with the same target's REST `add`:
    `rest_rps`, `rps_vs_rest` (MCP req/s / REST req/s), `p50_vs_rest` and `meets_goal`
    (`rps_vs_rest` >= MCP_GOAL; None without an `add` result); and to each scale target's
    `add` its comparison with calcmcp-w1 (see `derive_scale`)."""
    derive_scale(results)
    for per in results.values():
        mcp, rest = per.get("mcp"), per.get("add")
        if mcp is None:
            continue
        rest_rps = rest.get("rps") if rest else None
        rest_p50 = rest.get("p50_ms") if rest else None
        rps_ratio = _ratio(mcp.get("rps"), rest_rps)
        mcp.update(
            rest_rps=rest_rps,
            rest_p50_ms=rest_p50,
            rps_vs_rest=rps_ratio,
            p50_vs_rest=_ratio(mcp.get("p50_ms"), rest_p50),
            goal_vs_rest=MCP_GOAL,
            meets_goal=None if rps_ratio is None else rps_ratio >= MCP_GOAL,
        )


def _workers(name: str) -> int | None:
    """N of a `calcmcp-wN` target, else None."""
    prefix = "calcmcp-w"
    count = name.removeprefix(prefix)
    return int(count) if name.startswith(prefix) and count.isdigit() else None


def derive_scale(results: Mapping[str, Mapping[str, dict[str, Any]]]) -> None:
    """Add `rps_vs_w1` (REST add req/s / calcmcp-w1's of the same run) to each scale target."""
    base = (results.get(SCALE_BASE) or {}).get("add") or {}
    for name, per in results.items():
        add = per.get("add")
        if add is not None and _workers(name) is not None:
            add["rps_vs_w1"] = _ratio(add.get("rps"), base.get("rps"))


def scale_goals(results: Results) -> list[str]:
    """Scale-out lines: each calcmcp-wN's REST add against calcmcp-w1 (goal for 2 workers),
    and its broadcast fan-out p99 (goal at 5,000 streams)."""
    lines = []
    for name, per in results.items():
        workers = _workers(name)
        if workers is None:
            continue
        add = per.get("add") or {}
        if add.get("rps_vs_w1") is not None and workers > 1:
            goal = SCALE_GOALS.get(workers)
            verdict = (
                f"(goal >= {goal:.1f}x): {'met' if add['rps_vs_w1'] >= goal else 'NOT met'}"
                if goal
                else "(no goal: more workers than cores)"
            )
            lines.append(
                f"{name}: REST add {add['rps']:,.0f} req/s = {add['rps_vs_w1']:.2f}x "
                f"{SCALE_BASE} {verdict}"
            )
        sse = per.get("sse") or {}
        if sse.get("p99_ms") is not None:
            at_goal = sse.get("connected") == FANOUT_GOAL_STREAMS
            met = "met" if sse["p99_ms"] <= FANOUT_GOAL_MS and not sse.get("lost") else "NOT met"
            verdict = met if at_goal else f"(the goal is for {FANOUT_GOAL_STREAMS:,} streams)"
            lines.append(
                f"{name}: broadcast to {sse['connected']:,} streams delivered p99 "
                f"{sse['p99_ms']:.1f} ms, lost {sse.get('lost')} "
                f"(goal <= {FANOUT_GOAL_MS:.0f} ms at {FANOUT_GOAL_STREAMS:,}): {verdict}"
            )
    return lines


METRICS_COST_GOAL = 0.05
"""The metrics may cost at most this share of calcmcp's authenticated add throughput."""
COST_TARGETS = {"calcmcp-nometrics": "the metrics", "calcmcp-accesslog": "the access log"}
"""Targets that are `calcmcp` with one feature toggled, and the feature (see targets.py)."""


def cost_lines(results: Results) -> list[str]:
    """What the metrics and the access log cost: `calcmcp` against the target without the
    metrics, and the target with the access log against `calcmcp` (same run)."""
    lines = []
    base = results.get("calcmcp") or {}
    for name, feature in COST_TARGETS.items():
        other = results.get(name) or {}
        for bench in ("add", "mcp"):
            ours, theirs = (base.get(bench) or {}).get("rps"), (other.get(bench) or {}).get("rps")
            if not ours or not theirs:
                continue
            without, with_ = (theirs, ours) if name == "calcmcp-nometrics" else (ours, theirs)
            cost = 1 - with_ / without
            line = (
                f"{feature} cost {cost:.1%} of {bench} throughput "
                f"({with_:,.0f} req/s with, {without:,.0f} without)"
            )
            if name == "calcmcp-nometrics" and bench == "add":
                met = "met" if cost < METRICS_COST_GOAL else "NOT met"
                line += f" (goal < {METRICS_COST_GOAL:.0%}): {met}"
            lines.append(line)
    return lines


def goals(results: Results) -> list[str]:
    """One line per target goal measured: MCP vs REST throughput, stdio cold start, scale-out,
    what the metrics and the access log cost."""
    lines = scale_goals(results) + cost_lines(results)
    for name, per in results.items():
        mcp = per.get("mcp") or {}
        if mcp.get("rps_vs_rest") is not None:
            verdict = "met" if mcp["meets_goal"] else "NOT met"
            lines.append(
                f"{name}: MCP tools/call {mcp['rps']:,.0f} req/s = {mcp['rps_vs_rest']:.2f}x "
                f"REST add {mcp['rest_rps']:,.0f} req/s (goal >= {MCP_GOAL:.2f}x): {verdict}"
            )
        stdio = per.get("stdio") or {}
        goal = stdio.get("goal_ms")
        for server in stdio.get("servers", ()):
            run = stdio[server]
            verdicts = ", ".join(
                f"{stat} {'met' if run[f'{stat}_ms'] < goal else 'NOT met'}"
                for stat in ("p50", "p99")
            )
            lines.append(
                f"{name}: `{run['command']}` to first tools/list p50 {run['p50_ms']:.0f} ms,"
                f" p99 {run['p99_ms']:.0f} ms, max {run['max_ms']:.0f} ms"
                f" (goal < {goal:.0f} ms): {verdicts}"
            )
    return lines


def flatten(results: Results) -> dict[str, dict[str, float | None]]:
    """Every target's metric values, keyed by metric key."""
    return {name: {m.key: m.value(per) for m in METRICS} for name, per in results.items()}


def ratios(results: Results) -> dict[str, dict[str, dict[str, float | None]]]:
    """target -> `vs_<baseline>` -> metric -> target value / baseline value."""
    values = flatten(results)
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for name, own in values.items():
        for baseline in BASELINES:
            if baseline == name or baseline not in values:
                continue
            base = values[baseline]
            out.setdefault(name, {})[f"vs_{baseline}"] = {
                m.key: _ratio(own[m.key], base[m.key]) for m in METRICS if m.ratio
            }
    return out


def _ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, or None when either is missing or the baseline is zero."""
    if value is None or baseline is None or baseline == 0:
        return None
    return round(value / baseline, 3)


def _format(value: float | None, unit: str) -> str:
    """A table cell for one value."""
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "req/s" or not unit:
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-align the first column, right-align the others."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *(line(row) for row in rows)])


def values_table(results: Results) -> str:
    """The measured values, one column per target."""
    values = flatten(results)
    names = list(values)
    rows = [
        [metric.label, metric.unit, *(_format(values[n][metric.key], metric.unit) for n in names)]
        for metric in METRICS
        if any(values[n][metric.key] is not None for n in names)
    ]
    return _table(["metric", "unit", *names], rows)


def ratio_table(results: Results) -> str:
    """Each target's ratios against `seed` and `bare`, one column per pair."""
    table = ratios(results)
    pairs = [(name, vs) for name, per in table.items() for vs in per]
    rows = []
    for metric in (m for m in METRICS if m.ratio):
        cells = [table[name][vs][metric.key] for name, vs in pairs]
        if any(cell is not None for cell in cells):
            better = "higher" if metric.higher_is_better else "lower"
            rows.append([metric.label, better, *(_cell(cell) for cell in cells)])
    header = ["ratio (target / baseline)", "better", *(f"{n}/{vs[3:]}" for n, vs in pairs)]
    return _table(header, rows) if rows else ""


def _cell(value: float | None) -> str:
    """A ratio cell."""
    return "-" if value is None else f"{value:.2f}x"


def render(results: Results, failures: Mapping[str, Sequence[str]]) -> str:
    """The whole human-readable report."""
    measured = any(per for per in results.values())
    parts = [values_table(results) if measured else "(nothing was measured)"]
    ratio_text = ratio_table(results)
    if ratio_text:
        parts.append(ratio_text)
    goal_lines = goals(results)
    if goal_lines:
        parts.append("\n".join(["goals:", *goal_lines]))
    for name, errors in failures.items():
        parts.extend(f"! {name}: {error}" for error in errors)
    return "\n\n".join(parts)


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write the results document (creating the results folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
