"""``GET /console``: the operator's console, one static page with its script and style sheet.

Served from the package (``console/``), read once at start-up: no build step, no CDN, nothing
fetched from elsewhere, and a Content-Security-Policy that allows this origin only.
"""

from __future__ import annotations

from importlib import resources

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

CSP = (
    "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
# path, file, media type (Litestar adds "; charset=utf-8" to text types)
ASSETS = (
    ("/console", "index.html", "text/html"),
    ("/console/console.js", "console.js", "text/javascript"),
    ("/console/console.css", "console.css", "text/css"),
    ("/console/icon.svg", "icon.svg", "image/svg+xml"),
)


def _asset(path: str, body: bytes, media_type: str) -> HTTPRouteHandler:
    @get(path, include_in_schema=False, sync_to_thread=False, media_type=media_type)
    def asset() -> Response[bytes]:
        return Response(body, media_type=media_type, headers=HEADERS)

    return asset


def handlers() -> list[HTTPRouteHandler]:
    """The console's routes, its files read now."""
    folder = resources.files(__package__) / "console"
    return [
        _asset(path, (folder / name).read_bytes(), media_type) for path, name, media_type in ASSETS
    ]
