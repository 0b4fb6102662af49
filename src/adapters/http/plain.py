"""What Litestar does for a handler, done by hand for the plain ASGI routes on the hot paths.

``/token``, ``/calculator/*`` and ``/mcp`` are ASGI routes: Litestar's machinery around a
handler (a request object, signature parsing, dependency resolution, response building, an exit
stack) cost the calculator a third of its time and the token endpoint more (bench/README.md,
"Where a request's time goes"). What they still need of it is here: the method check, headers
read in one pass, and a body read within a limit. Their OpenAPI operations are written by hand
too (:func:`src.adapters.http.openapi.add_operations`), since Litestar documents no ASGI route.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar.exceptions import ClientException, HTTPException, MethodNotAllowedException
from litestar.types import Receive, Scope, Send

from src.adapters.http.responses import JsonBody

POST_ONLY = "POST, OPTIONS"
_OPTIONS = JsonBody(b"", 204, ((b"allow", POST_ONLY.encode()),))


async def refuse_unless_post(scope: Scope, receive: Receive, send: Send) -> bool:
    """Whether the request is a POST; if not, it is answered here: ``OPTIONS`` with the allowed
    methods (no token needed: a CORS preflight carries none), anything else 405.

    Raises:
        MethodNotAllowedException: a method other than POST and OPTIONS.
    """
    method = scope["method"]  # type: ignore[typeddict-item]  # an HTTP scope's
    if method == "POST":
        return True
    if method != "OPTIONS":
        raise MethodNotAllowedException(headers={"Allow": POST_ONLY})
    await _OPTIONS(scope, receive, send)
    return False


def headers_named(scope: Scope, names: Iterable[bytes]) -> dict[bytes, str]:
    """The request headers called ``names`` (lower case), read in one pass; of a repeated one,
    the first."""
    wanted = frozenset(names)
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in wanted and name not in found:
            found[name] = value.decode("latin-1")
    return found


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (the rest is never read).

    Raises:
        HTTPException: 413, the body is larger than ``limit``.
        ClientException: the client went away before its body had arrived.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Any = await receive()
        if message["type"] != "http.request":
            raise ClientException("the client went away before sending its body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HTTPException(
                status_code=413, detail=f"the request body is larger than {limit} bytes"
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
