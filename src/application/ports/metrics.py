"""What the service counts for the people who run it: requests, tokens, streams, events, MCP.

Observed at the adapters' edges (the HTTP server, the fan-out, the event bus, the MCP engine) and
fed from the audit trail; the core never asks for it. Every label value is from a small, fixed
set (a route template, never a path; a refusal's class, never its message), so a client cannot
grow the number of series.
"""

from __future__ import annotations

from typing import Protocol

from src.application.ports.security import AuditEvent


class Metrics(Protocol):
    """Counters, gauges and histograms of the running service."""

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """One HTTP request answered: its route template, method, status and duration."""
        ...

    def record(self, event: AuditEvent) -> None:
        """A security event (an :class:`AuditTrail` too): tokens issued, refused by reason."""
        ...

    def rate_limited(self, limit: str) -> None:
        """A request refused by a rate limit (``client_auth``, ``streams_per_client``, ...)."""
        ...

    def stream_opened(self, kind: str) -> None:
        """An SSE stream of ``kind`` (``events``, ``mcp``, ``mcp_sse``) started."""
        ...

    def stream_closed(self, kind: str) -> None:
        """An SSE stream of ``kind`` ended."""
        ...

    def events_published(self) -> None:
        """An event was published (by this process)."""
        ...

    def events_delivered(self, count: int) -> None:
        """``count`` events were handed to subscribers (one per subscriber and event)."""
        ...

    def events_replayed(self, count: int) -> None:
        """``count`` missed events were replayed to a resuming subscriber."""
        ...

    def subscriber_cut_off(self, dropped: int) -> None:
        """A subscriber fell too far behind and was cut off; ``dropped`` events not sent."""
        ...

    def mcp_call(self, method: str, tool: str, era: str, outcome: str) -> None:
        """An MCP request answered: method, tool (``""`` if none), protocol era, outcome
        (``ok``, ``tool_error``, ``error``)."""
        ...


class NoMetrics(Metrics):
    """Counts nothing: metrics turned off, the stdio server, and tests that do not look."""

    def http_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Ignore."""

    def record(self, event: AuditEvent) -> None:
        """Ignore."""

    def rate_limited(self, limit: str) -> None:
        """Ignore."""

    def stream_opened(self, kind: str) -> None:
        """Ignore."""

    def stream_closed(self, kind: str) -> None:
        """Ignore."""

    def events_published(self) -> None:
        """Ignore."""

    def events_delivered(self, count: int) -> None:
        """Ignore."""

    def events_replayed(self, count: int) -> None:
        """Ignore."""

    def subscriber_cut_off(self, dropped: int) -> None:
        """Ignore."""

    def mcp_call(self, method: str, tool: str, era: str, outcome: str) -> None:
        """Ignore."""


NO_METRICS = NoMetrics()
"""The shared do-nothing instance (the default wherever metrics are optional)."""
