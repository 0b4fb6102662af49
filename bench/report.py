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
        """This metric's value in one target's results, or None if it was not measured."""
        benchmark, field = self.key.split(".", 1)
        value = results.get(benchmark, {}).get(field)
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
    # Delivered: kernel receive timestamps on the subscriber sockets (see bench/README.md).
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
)


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
    for name, errors in failures.items():
        parts.extend(f"! {name}: {error}" for error in errors)
    return "\n\n".join(parts)


def write_json(path: Path, document: Mapping[str, Any]) -> None:
    """Write the results document (creating the results folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
