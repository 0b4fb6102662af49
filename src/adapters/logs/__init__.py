"""Adapters onto the standard library's logging: the audit trail, and one-JSON-line formatting."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import msgspec

from src.application.context import request_id
from src.application.ports import AuditEvent, AuditTrail

_encoder = msgspec.json.Encoder()


class LoggingAuditTrail(AuditTrail):
    """One log record per security event, on the ``calcmcp.audit`` logger, with the request id.

    The event's fields travel as structured data (``record.fields``): the JSON formatter writes
    them as keys of the line, a terminal formatter after the message.

    Args:
        forward: other trails each event is handed to as well (the metrics, which count them).
    """

    def __init__(self, forward: Sequence[AuditTrail] = ()) -> None:
        self._log = logging.getLogger("calcmcp.audit")
        self._forward = tuple(forward)

    def record(self, event: AuditEvent) -> None:
        """Log ``event`` (and hand it on)."""
        for trail in self._forward:
            trail.record(event)
        if not self._log.isEnabledFor(logging.INFO):
            return
        fields: dict[str, Any] = {
            "event": f"{event.action}.{event.outcome}",
            "client_id": event.client_id,
            "scopes": list(event.scopes) or None,
            "reason": event.reason,
            "token_id": event.token_id,
            "request_id": request_id.get(),
            **event.details,
        }
        fields = {key: value for key, value in fields.items() if value is not None}
        self._log.info("%s %s", event.action, event.outcome, extra={"fields": fields})


class JsonLineFormatter(logging.Formatter):
    """Formats a record as one line of JSON: time, level, logger, message, and its fields."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON."""
        line: dict[str, Any] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _encoder.encode(line).decode()

    def _timestamp(self, created: float) -> str:
        # strftime once a second, not once a line
        second = int(created)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._stamp}.{int((created - second) * 1000):03d}Z"


class ConsoleFormatter(logging.Formatter):
    """Human-readable lines for a terminal, with a record's fields after its message."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """The record as text."""
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return text
