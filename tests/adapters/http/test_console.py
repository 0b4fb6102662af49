"""``GET /console``: the page, its script and style sheet, served by the app under a strict CSP.

Whether the page works is tested in a real browser in ``tests/e2e/test_console.py``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

pytestmark = pytest.mark.anyio

CSP = (
    "default-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)
ASSETS = [
    ("/console", "text/html; charset=utf-8"),
    ("/console/console.js", "text/javascript; charset=utf-8"),
    ("/console/console.css", "text/css; charset=utf-8"),
    ("/console/icon.svg", "image/svg+xml"),
]


@pytest.mark.parametrize(("path", "media_type"), ASSETS)
async def test_each_file_is_served_with_a_self_only_csp(
    client: AsyncTestClient[Any], path: str, media_type: str
) -> None:
    response = await client.get(path)

    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.content


@pytest.mark.parametrize(("path", "media_type"), ASSETS)
async def test_nothing_is_loaded_from_elsewhere(
    client: AsyncTestClient[Any], path: str, media_type: str
) -> None:
    # an XML namespace names, it does not fetch
    text = (await client.get(path)).text.replace('xmlns="http://www.w3.org/2000/svg"', "")

    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]", text, re.IGNORECASE), media_type
    assert "@import" not in text


async def test_the_page_uses_no_inline_script_or_style(client: AsyncTestClient[Any]) -> None:
    page = (await client.get("/console")).text

    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", page, re.DOTALL)
    assert scripts == [""]  # the one external script, nothing inline
    assert re.search(r'<script src="/console/console.js" defer>', page)
    assert "<style" not in page
    assert " style=" not in page
    assert not re.search(r"\son[a-z]+=", page)  # no inline event handlers


async def test_the_script_never_writes_html(client: AsyncTestClient[Any]) -> None:
    script = (await client.get("/console/console.js")).text

    for sink in ("innerHTML =", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


async def test_the_console_is_not_in_the_api_document(client: AsyncTestClient[Any]) -> None:
    paths = (await client.get("/schema/openapi.json")).json()["paths"]

    assert not [path for path in paths if path.startswith("/console")]
    assert "/events/ticket" in paths


async def test_an_unknown_console_path_is_a_json_404(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/console/nothing.js")

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
