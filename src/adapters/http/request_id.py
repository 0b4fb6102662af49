"""Every request gets an id: the client's ``X-Request-ID`` if sane, else a new one.

:mod:`observe` sets it in the application's context for the duration of the request and returns
it in the response's ``X-Request-ID``, so log and audit lines of one request can be found
together.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Iterable

HEADER = b"x-request-id"
_SANE = re.compile(rb"[A-Za-z0-9._:\-]{1,128}")  # no spaces, quotes or control characters


def request_id_of(headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The id the client sent in ``X-Request-ID``, if it is sane; else a new one."""
    sent = next((v for k, v in headers if k == HEADER), None)
    return sent if sent is not None and _SANE.fullmatch(sent) else _new()


# Unique, not secret: a random per-process prefix and a counter. Asking the operating system
# for random bytes on every request cost a tenth of a calculator request.
_PREFIX = secrets.token_hex(4)
_COUNTER = itertools.count(1)


def _new() -> bytes:
    return f"{_PREFIX}{next(_COUNTER):08x}".encode("ascii")
