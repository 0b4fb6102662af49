"""What the current request is, for correlating logs and audit lines across layers."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("calcmcp_request_id", default=None)
"""The id of the request being served (from ``X-Request-ID`` or generated), if any."""
