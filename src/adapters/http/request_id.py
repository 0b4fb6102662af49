"""Every request gets an id: the client's ``X-Request-ID`` if sane, else a new one.

It is returned in the response's ``X-Request-ID`` and set in the application's context for the
duration of the request, so log and audit lines of one request can be found together.
"""

from __future__ import annotations

import itertools
import re
import secrets
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from src.application.context import request_id

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")  # no spaces, quotes or control characters


class RequestId:
    """ASGI middleware setting the request id (plain ASGI: it wraps every request)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request with its id set, and return the id in the response headers."""
        if scope["type"] != ScopeType.HTTP:
            await self._app(scope, receive, send)
            return
        sent = next((v for k, v in scope["headers"] if k == HEADER), None)
        value = sent if sent is not None and _SANE.fullmatch(sent) else _new()
        token = request_id.set(value.decode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: Any = message.setdefault("headers", [])
                headers.append((HEADER, value))
            await send(message)

        try:
            await self._app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)


# Unique, not secret: a random per-process prefix and a counter. Asking the operating system
# for random bytes on every request cost a tenth of a calculator request.
_PREFIX = secrets.token_hex(4)
_COUNTER = itertools.count(1)


def _new() -> bytes:
    return f"{_PREFIX}{next(_COUNTER):08x}".encode("ascii")
