"""The Prometheus metrics adapter: what each port call counts, and the sum over worker processes.

prometheus-client chooses multi-process mode when it is first imported, so the workers here are
processes of their own, started with ``PROMETHEUS_MULTIPROC_DIR`` set; this process only reads
their files, as a scrape of any worker does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from src.adapters.prometheus.metrics import PrometheusMetrics
from src.adapters.prometheus.multiprocess import ENV, shared_directory
from src.application.ports import AuditEvent
from tests.metrics_support import value

REPO = Path(__file__).resolve().parents[3]
WORKER = """
import sys
from src.adapters.prometheus.metrics import prometheus_metrics

metrics = prometheus_metrics()
assert metrics.registry is not None
for _ in range(int(sys.argv[1])):
    metrics.http_request("/calculator/add", "POST", 200, 0.003)
metrics.stream_opened("events")
metrics.events_published()
if sys.argv[2] == "ends":
    metrics.close()  # the worker stops: its open streams stop counting
"""
REQUESTS = "calcmcp_http_requests_total"
ADD = {"route": "/calculator/add", "method": "POST", "status": "200"}


def page(metrics: PrometheusMetrics, accept: str = "") -> str:
    body, _ = metrics.exposition(accept)
    return body.decode()


def test_requests_are_counted_and_timed_per_route_method_and_status() -> None:
    metrics = PrometheusMetrics()
    metrics.http_request("/calculator/add", "POST", 200, 0.002)
    metrics.http_request("/calculator/add", "POST", 200, 0.2)
    metrics.http_request("/calculator/add", "POST", 400, 0.001)

    text = page(metrics)
    assert value(text, REQUESTS, **ADD) == 2
    assert value(text, REQUESTS, **{**ADD, "status": "400"}) == 1
    latency = "calcmcp_http_request_duration_seconds"
    assert value(text, f"{latency}_bucket", **ADD, le="0.0025") == 1
    assert value(text, f"{latency}_bucket", **ADD, le="0.25") == 2
    assert value(text, f"{latency}_sum", **ADD) == pytest.approx(0.202)


def test_token_events_are_counted_by_outcome_and_reason() -> None:
    metrics = PrometheusMetrics()
    metrics.record(AuditEvent(action="token", outcome="issued", client_id="a", token_id="t"))
    metrics.record(AuditEvent(action="token", outcome="refused", reason="InvalidClient"))
    metrics.record(AuditEvent(action="token", outcome="refused", reason="InvalidClient"))
    metrics.record(AuditEvent(action="revoke", outcome="refused", reason="InvalidClient"))

    text = page(metrics)
    assert value(text, "calcmcp_tokens_issued_total") == 1
    assert value(text, "calcmcp_tokens_refused_total", reason="InvalidClient") == 2
    events = "calcmcp_security_events_total"
    assert value(text, events, event="revoke.refused", reason="InvalidClient") == 1
    assert value(text, events, event="token.issued", reason="") == 1


def test_stream_and_event_figures_follow_the_port_calls() -> None:
    metrics = PrometheusMetrics()
    metrics.stream_opened("events")
    metrics.stream_opened("events")
    metrics.stream_closed("events")
    metrics.events_published()
    metrics.events_delivered(3)
    metrics.events_replayed(2)
    metrics.subscriber_cut_off(5)
    metrics.rate_limited("client_auth")
    metrics.mcp_call("tools/call", "add", "modern", "ok")

    text = page(metrics)
    assert value(text, "calcmcp_sse_streams_open", stream="events") == 1
    assert value(text, "calcmcp_events_published_total") == 1
    assert value(text, "calcmcp_events_delivered_total") == 3
    assert value(text, "calcmcp_events_replayed_total") == 2
    assert value(text, "calcmcp_slow_subscribers_cut_off_total") == 1
    assert value(text, "calcmcp_events_dropped_total") == 5
    assert value(text, "calcmcp_rate_limit_rejections_total", limit="client_auth") == 1
    mcp = {"method": "tools/call", "tool": "add", "era": "modern", "outcome": "ok"}
    assert value(text, "calcmcp_mcp_calls_total", **mcp) == 1


def test_each_instance_keeps_its_own_figures() -> None:
    one, other = PrometheusMetrics(), PrometheusMetrics()
    one.events_published()

    assert value(page(one), "calcmcp_events_published_total") == 1
    assert value(page(other), "calcmcp_events_published_total") == 0


def test_counters_have_no_created_series() -> None:
    text = page(PrometheusMetrics())

    assert "_created" not in text


def test_openmetrics_is_chosen_by_the_accept_header() -> None:
    body, content_type = PrometheusMetrics().exposition("application/openmetrics-text")

    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


# --- several worker processes ----------------------------------------------------------------


def run_worker(directory: str, requests: int, fate: str) -> None:
    """A process that counts as a worker does, in multi-process mode on ``directory``."""
    environ = {**os.environ, ENV: directory, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(requests), fate],
        env=environ,
        cwd=REPO,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()


def test_the_workers_figures_are_summed() -> None:
    environ: dict[str, str] = {}
    with shared_directory(environ) as directory:
        run_worker(directory, 2, "ends")
        run_worker(directory, 3, "lives")
        text = page(PrometheusMetrics(multiprocess_dir=directory))

    assert value(text, REQUESTS, **ADD) == 5
    assert value(text, "calcmcp_http_request_duration_seconds_count", **ADD) == 5
    assert value(text, "calcmcp_events_published_total") == 2
    # a gauge of open streams counts the live workers only
    assert value(text, "calcmcp_sse_streams_open", stream="events") == 1
    # per-process figures cannot be summed: there are none
    assert "process_cpu_seconds_total" not in text


def test_a_shared_directory_is_made_named_and_removed() -> None:
    environ: dict[str, str] = {}
    with shared_directory(environ) as directory:
        assert environ == {ENV: directory}
        assert Path(directory).is_dir()
        assert Path(directory).stat().st_mode & 0o777 == 0o700
    assert environ == {}
    assert not Path(directory).exists()


def test_a_configured_directory_is_kept_but_emptied_of_an_earlier_runs_files(
    tmp_path: Path,
) -> None:
    configured = tmp_path / "metrics"
    configured.mkdir()
    (configured / "counter_123.db").write_bytes(b"stale")
    (configured / "notes.txt").write_text("not ours")
    environ = {ENV: str(configured)}

    with shared_directory(environ) as directory:
        assert directory == str(configured)
        assert not (configured / "counter_123.db").exists()
    assert (configured / "notes.txt").exists()
    assert environ == {ENV: str(configured)}


def test_a_configured_directory_that_does_not_exist_is_made(tmp_path: Path) -> None:
    configured = tmp_path / "not" / "yet"

    with shared_directory({ENV: str(configured)}) as directory:
        assert Path(directory).is_dir()


EDGES = [0.0, 0.0005, 0.00050001, 0.001, 0.004, 0.01, 0.3, 1, 2.5, 9.99, 10, 10.5, 600.0]


def test_folded_tallies_are_what_observing_each_request_gives() -> None:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest  # noqa: PLC0415

    from src.adapters.prometheus.metrics import LATENCY_BUCKETS  # noqa: PLC0415

    metrics = PrometheusMetrics()
    reference = CollectorRegistry()
    observed = Histogram(
        "calcmcp_http_request_duration_seconds",
        "reference",
        ("route", "method", "status"),
        registry=reference,
        buckets=LATENCY_BUCKETS,
    ).labels("/calculator/add", "POST", "200")
    for seconds in EDGES:
        metrics.http_request("/calculator/add", "POST", 200, seconds)
        observed.observe(seconds)
    metrics.fold()

    def series(text: str) -> list[str]:
        return [
            line
            for line in text.splitlines()
            if line.startswith("calcmcp_http_request_duration_seconds_")
        ]

    assert series(page(metrics)) == series(generate_latest(reference).decode())


@pytest.mark.anyio
async def test_in_the_event_loop_tallies_reach_the_metrics_by_themselves_or_on_a_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import anyio  # noqa: PLC0415

    from src.adapters.prometheus import metrics as module  # noqa: PLC0415

    monkeypatch.setattr(module, "FOLD_AFTER", 0.05)
    metrics = PrometheusMetrics()
    metrics.http_request("/calculator/add", "POST", 200, 0.002)
    metrics.events_published()
    unfolded = metrics.registry.get_sample_value("calcmcp_events_published_total")
    assert unfolded in (None, 0.0)  # tallied, not yet folded
    await anyio.sleep(0.2)  # no scrape: the timer folds them in
    assert metrics.registry.get_sample_value("calcmcp_events_published_total") == 1
    assert metrics.registry.get_sample_value(REQUESTS, ADD) == 1

    metrics.http_request("/calculator/add", "POST", 200, 0.002)
    assert value(page(metrics), REQUESTS, **ADD) == 2  # a scrape folds at once
