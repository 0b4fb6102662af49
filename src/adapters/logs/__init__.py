"""Adapters onto the standard library's logging: the security audit trail."""

from __future__ import annotations

import logging

import msgspec

from src.application.context import request_id
from src.application.ports import AuditEvent, AuditTrail

_encoder = msgspec.json.Encoder()


class LoggingAuditTrail(AuditTrail):
    """One JSON line per security event, on the ``calcmcp.audit`` logger, with the request id."""

    def __init__(self) -> None:
        self._log = logging.getLogger("calcmcp.audit")

    def record(self, event: AuditEvent) -> None:
        """Log ``event`` as one line of JSON."""
        if not self._log.isEnabledFor(logging.INFO):
            return
        line = {
            "audit": event.action,
            "outcome": event.outcome,
            "client_id": event.client_id,
            "scopes": list(event.scopes),
            "reason": event.reason,
            "token_id": event.token_id,
            "request_id": request_id.get(),
            **event.details,
        }
        self._log.info(_encoder.encode({k: v for k, v in line.items() if v is not None}).decode())
