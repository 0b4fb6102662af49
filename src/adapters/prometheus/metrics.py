"""The metrics of one process, in a registry of their own, exposed in Prometheus's text format.

Under ``--workers`` every worker writes its values to files in ``PROMETHEUS_MULTIPROC_DIR``
(prometheus-client's multi-process mode, see :mod:`.multiprocess`) and a scrape of any worker
reads them all, so the figures are the service's, whichever worker answers.
"""

from __future__ import annotations

import asyncio
import os
from bisect import bisect_left
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from src.adapters.prometheus.multiprocess import ENV
from src.application.ports import AuditEvent, Metrics

# Seconds. Most requests take well under a millisecond of server time; streams take minutes.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
HTTP_LABELS = ("route", "method", "status")
FOLD_AFTER = 1.0
"""Seconds the request and publication counts wait, at most, before they reach the metrics
(a scrape of this process folds them in at once)."""
# a `_created` series beside every counter doubles the page and tells nothing a scrape needs
disable_created_metrics()  # type: ignore[no-untyped-call]


class PrometheusMetrics(Metrics):
    """Every metric the service keeps, named ``calcmcp_*``.

    What is counted on every request (its count and duration, the event a calculation
    publishes, an MCP call, a token issued or refused) is tallied in plain Python first and
    folded into prometheus-client's metrics at most :data:`FOLD_AFTER` seconds later, or when
    this process is scraped: prometheus-client's own ``labels``, ``inc`` and ``observe`` take a
    lock and check the metric each time, which cost 3.5 µs a request here (4 µs an MCP call),
    about 5% of a call. Other events (streams, cut-offs, rate limits) are counted as they
    happen. Under ``--workers`` a scrape answered by another worker sees this one's counts up
    to :data:`FOLD_AFTER` seconds late.
    """

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        self._multiprocess_dir = multiprocess_dir
        self.registry = registry = CollectorRegistry()
        if multiprocess_dir is None:  # process figures of a worker pool cannot be summed
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)

        def counter(name: str, text: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(name, text, labels, registry=registry)

        self._requests = counter("calcmcp_http_requests", "HTTP requests answered", HTTP_LABELS)
        self._latency = Histogram(
            "calcmcp_http_request_duration_seconds",
            "Time from a request's arrival to the end of its response (streams: their life)",
            HTTP_LABELS,
            registry=registry,
            buckets=LATENCY_BUCKETS,
        )
        self._issued = counter("calcmcp_tokens_issued", "Access tokens issued")
        self._refused = counter("calcmcp_tokens_refused", "Token requests refused", ("reason",))
        self._security = counter(
            "calcmcp_security_events", "Audited security events", ("event", "reason")
        )
        self._limited = counter(
            "calcmcp_rate_limit_rejections", "Requests refused by a rate limit", ("limit",)
        )
        self._streams = Gauge(
            "calcmcp_sse_streams_open",
            "Server-Sent Events streams open now",
            ("stream",),
            registry=registry,
            multiprocess_mode="livesum",
        )
        self._published_total = counter("calcmcp_events_published", "Events published")
        self._delivered = counter(
            "calcmcp_events_delivered", "Events handed to subscribers (one per subscriber)"
        )
        self._replayed = counter(
            "calcmcp_events_replayed", "Missed events replayed to resuming subscribers"
        )
        self._dropped = counter(
            "calcmcp_events_dropped", "Events not sent to subscribers cut off as too slow"
        )
        self._cut_off = counter(
            "calcmcp_slow_subscribers_cut_off", "Subscribers cut off for falling too far behind"
        )
        self._mcp = counter(
            "calcmcp_mcp_calls", "MCP requests answered", ("method", "tool", "era", "outcome")
        )
        self._http: dict[tuple[str, str, int], _Tally] = {}
        self._published = 0  # publications not folded in yet
        self._mcp_pending: dict[tuple[str, str, str, str], int] = {}
        self._security_pending: dict[tuple[str, str, str], int] = {}
        self._fold_pending = False

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Tally the request and its duration (folded in later, see the class)."""
        tally = self._http.get((route, method, status))
        if tally is None:
            labels = (route, method, str(status))
            tally = _Tally(self._requests.labels(*labels), self._latency.labels(*labels))
            self._http[route, method, status] = tally
        tally.count += 1
        tally.seconds += seconds
        tally.buckets[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self._fold_soon()

    def record(self, event: AuditEvent) -> None:
        """Tally a security event (folded in later, see the class); token issues and refusals
        have counters of their own."""
        key = (event.action, event.outcome, event.reason or "")
        self._security_pending[key] = self._security_pending.get(key, 0) + 1
        self._fold_soon()

    def rate_limited(self, limit: str) -> None:
        """Count a rate-limit rejection."""
        self._limited.labels(limit).inc()

    def stream_opened(self, kind: str) -> None:
        """One more open stream."""
        self._streams.labels(kind).inc()

    def stream_closed(self, kind: str) -> None:
        """One fewer open stream."""
        self._streams.labels(kind).dec()

    def events_published(self) -> None:
        """Tally a publication (folded in later, see the class)."""
        self._published += 1
        self._fold_soon()

    def events_delivered(self, count: int) -> None:
        """Count deliveries (one call per published event, not per subscriber)."""
        self._delivered.inc(count)

    def events_replayed(self, count: int) -> None:
        """Count replayed events."""
        self._replayed.inc(count)

    def subscriber_cut_off(self, dropped: int) -> None:
        """Count a cut-off subscriber and the events it will not be sent."""
        self._cut_off.inc()
        self._dropped.inc(dropped)

    def mcp_call(self, method: str, tool: str, era: str, outcome: str) -> None:
        """Tally an MCP request (folded in later, see the class)."""
        key = (method, tool, era, outcome)
        self._mcp_pending[key] = self._mcp_pending.get(key, 0) + 1
        self._fold_soon()

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The metrics page and its content type (OpenMetrics if ``accept`` asks for it)."""
        self.fold()
        registry = self.registry
        if self._multiprocess_dir is not None:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self._multiprocess_dir)  # type: ignore[no-untyped-call]
        encode, content_type = choose_encoder(accept)
        return encode(registry), content_type

    def fold(self) -> None:
        """Move the tallies into the metrics."""
        self._fold_pending = False
        if self._published:
            self._published_total.inc(self._published)
            self._published = 0
        for tally in self._http.values():
            tally.fold()
        pending, self._mcp_pending = self._mcp_pending, {}
        for labels, count in pending.items():
            self._mcp.labels(*labels).inc(count)
        security, self._security_pending = self._security_pending, {}
        for (action, outcome, reason), count in security.items():
            if (action, outcome) == ("token", "issued"):
                self._issued.inc(count)
            elif (action, outcome) == ("token", "refused"):
                self._refused.labels(reason).inc(count)
            self._security.labels(f"{action}.{outcome}", reason).inc(count)

    def _fold_soon(self) -> None:
        if self._fold_pending:
            return
        try:
            asyncio.get_running_loop().call_later(FOLD_AFTER, self.fold)
        except RuntimeError:  # not in the event loop (a test, a thread): at once
            self.fold()
            return
        self._fold_pending = True

    def close(self) -> None:
        """The process is ending: its tallies are folded in, and its open-stream gauges stop
        counting in the sum."""
        self.fold()
        if self._multiprocess_dir is not None:
            mark_process_dead(os.getpid(), self._multiprocess_dir)  # type: ignore[no-untyped-call]


class _Tally:
    """One label set's requests since the last fold: how many, their seconds, per bucket."""

    __slots__ = ("buckets", "count", "counter", "histogram", "seconds")

    def __init__(self, counter: Any, histogram: Any) -> None:
        self.counter = counter
        self.histogram = histogram
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last: above every bound (+Inf)

    def fold(self) -> None:
        """Add the tally to the counter and the histogram, and start again.

        A histogram child takes one observation at a time in prometheus-client's API; its
        ``_sum`` and ``_buckets`` (one value per bound, +Inf last, not cumulative) are what
        ``observe`` itself adds to, and are written the same way here (checked by the tests
        against ``observe``).
        """
        if not self.count:
            return
        self.counter.inc(self.count)
        self.histogram._sum.inc(self.seconds)
        for value, added in zip(self.histogram._buckets, self.buckets, strict=True):
            if added:
                value.inc(added)
        self.count, self.seconds = 0, 0.0
        self.buckets = [0] * len(self.buckets)


def prometheus_metrics() -> PrometheusMetrics:
    """The metrics of this process (multi-process mode when ``PROMETHEUS_MULTIPROC_DIR`` is set,
    which prometheus-client itself decided when it was imported)."""
    return PrometheusMetrics(multiprocess_dir=os.environ.get(ENV) or None)
