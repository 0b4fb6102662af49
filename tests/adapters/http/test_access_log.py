"""The access log and request ids: one JSON line per request on ``calcmcp.access``, with the
request's id, which is the client's ``X-Request-ID`` when sane and is returned in the response.
Also which formatter a process logs with: JSON for collectors, text on a terminal.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from litestar.testing import AsyncTestClient

from src.adapters.logs import ConsoleFormatter, JsonLineFormatter
from src.bootstrap import Settings, configure_logging
from tests.adapters.http.conftest import (
    DEV_ID,
    DEV_SECRET,
    bearer,
)
from tests.adapters.http.test_mcp_protocol import serving

pytestmark = pytest.mark.anyio

Http = AsyncTestClient[Any]
GENERATED = re.compile(r"[0-9a-f]{16}")
ACCESS_FIELDS = {"method", "route", "status", "duration_ms", "request_id", "client"}


@pytest.fixture
def access(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """The captured records, with the access and audit logs at INFO."""
    caplog.set_level(logging.INFO, logger="calcmcp.access")
    caplog.set_level(logging.INFO, logger="calcmcp.audit")
    return caplog


def lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[dict[str, Any]]:
    """The records of ``logger``, each as the JSON line the service would write."""
    formatter = JsonLineFormatter()
    return [json.loads(formatter.format(r)) for r in caplog.records if r.name == logger]


def form(secret: str = DEV_SECRET) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": DEV_ID, "client_secret": secret}


# --- one line per request --------------------------------------------------------------------


async def test_each_request_writes_one_json_access_line(
    tmp_path: Path, access: pytest.LogCaptureFixture
) -> None:
    async with serving(tmp_path) as client:
        token = (await client.post("/token", data=form())).json()["access_token"]
        access.clear()
        response = await client.post("/calculator/add?a=2718281&b=3", headers=bearer(token))

    assert response.status_code == 200
    [line] = lines(access, "calcmcp.access")
    assert set(line) >= ACCESS_FIELDS
    assert line["level"] == "info"
    assert line["logger"] == "calcmcp.access"
    assert line["msg"] == "POST /calculator/add 200"
    assert (line["method"], line["route"], line["status"]) == ("POST", "/calculator/add", 200)
    assert isinstance(line["duration_ms"], float)
    assert line["duration_ms"] > 0
    assert line["request_id"] == response.headers["x-request-id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])
    assert token not in json.dumps(line)
    assert "2718281" not in json.dumps(line)  # no query string


async def test_errors_and_unmatched_paths_are_logged_by_template(
    tmp_path: Path, access: pytest.LogCaptureFixture
) -> None:
    async with serving(tmp_path) as client:
        refused = await client.post("/calculator/divide?a=1&b=2")
        missing = await client.get("/no/such/page-3e9d")

    assert (refused.status_code, missing.status_code) == (401, 404)
    logged = lines(access, "calcmcp.access")
    assert [(line["route"], line["status"]) for line in logged] == [
        ("/calculator/divide", 401),
        ("<unmatched>", 404),
    ]
    assert "page-3e9d" not in json.dumps(logged)


async def test_the_access_log_can_be_turned_off(
    tmp_path: Path, access: pytest.LogCaptureFixture
) -> None:
    async with serving(tmp_path, access_log=False) as client:
        response = await client.post("/token", data=form(), headers={"X-Request-ID": "off-1"})

    assert response.status_code == 200
    assert lines(access, "calcmcp.access") == []
    # the request still has its id, and the security event is still recorded with it
    assert response.headers["x-request-id"] == "off-1"
    [audit] = lines(access, "calcmcp.audit")
    assert (audit["event"], audit["request_id"]) == ("token.issued", "off-1")


# --- request ids -----------------------------------------------------------------------------


@pytest.mark.parametrize("sent", ["abc-123", "A.b_c:d-E", "x" * 128])
async def test_a_sane_request_id_is_kept_echoed_and_logged(
    tmp_path: Path, access: pytest.LogCaptureFixture, sent: str
) -> None:
    async with serving(tmp_path) as client:
        response = await client.post("/token", data=form(), headers={"X-Request-ID": sent})

    assert response.headers["x-request-id"] == sent
    [logged] = lines(access, "calcmcp.access")
    [audit] = lines(access, "calcmcp.audit")
    assert logged["request_id"] == audit["request_id"] == sent


@pytest.mark.parametrize(
    "sent",
    ["", "has space", "x" * 129, 'quote"d', "new\\nline", "café"],
    ids=["empty", "space", "too-long", "quote", "backslash", "non-ascii"],
)
async def test_an_insane_request_id_is_replaced_by_a_generated_one(
    tmp_path: Path, access: pytest.LogCaptureFixture, sent: str
) -> None:
    async with serving(tmp_path) as client:
        response = await client.get("/", headers={b"x-request-id": sent.encode("utf-8")})

    generated = response.headers["x-request-id"]
    assert GENERATED.fullmatch(generated)
    [logged] = lines(access, "calcmcp.access")
    assert logged["request_id"] == generated


async def test_a_request_without_an_id_gets_a_new_one_each_time(
    tmp_path: Path, access: pytest.LogCaptureFixture
) -> None:
    async with serving(tmp_path) as client:
        responses = [await client.get(path) for path in ("/", "/", "/nope", "/health/live")]

    ids = [response.headers["x-request-id"] for response in responses]
    assert all(GENERATED.fullmatch(value) for value in ids)
    assert len(set(ids)) == 4  # unmatched and quiet routes get one too
    assert [line["request_id"] for line in lines(access, "calcmcp.access")] == ids[:3]


async def test_the_request_id_is_the_same_on_every_line_of_a_request(
    tmp_path: Path, access: pytest.LogCaptureFixture
) -> None:
    async with serving(tmp_path) as client:
        await client.post("/token", data=form("wrong-b1c2"), headers={"X-Request-ID": "one"})
        await client.post("/token", data=form(), headers={"X-Request-ID": "two"})

    audit = lines(access, "calcmcp.audit")
    logged = lines(access, "calcmcp.access")
    assert [(line["event"], line["request_id"]) for line in audit] == [
        ("token.refused", "one"),
        ("token.issued", "two"),
    ]
    assert [(line["status"], line["request_id"]) for line in logged] == [(401, "one"), (200, "two")]
    assert "wrong-b1c2" not in json.dumps(audit + logged)


# --- the formatter a process logs with -------------------------------------------------------


class Terminal(io.StringIO):
    """A stderr that says whether it is a terminal."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.fixture
def bare_root() -> Iterator[logging.Logger]:
    """The root logger without the service's handler (restored afterwards)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    root.handlers = [h for h in handlers if not getattr(h, "calcmcp", False)]
    try:
        yield root
    finally:
        root.handlers = handlers
        root.setLevel(level)


@pytest.mark.parametrize(
    "case",
    [
        ("auto", False, JsonLineFormatter),
        ("auto", True, ConsoleFormatter),
        ("json", True, JsonLineFormatter),
        ("console", False, ConsoleFormatter),
    ],
    ids=["auto-pipe", "auto-terminal", "json-terminal", "console-pipe"],
)
def test_the_log_format_follows_the_setting_and_the_terminal(
    bare_root: logging.Logger,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[str, bool, type[logging.Formatter]],
) -> None:
    log_format, tty, expected = case
    stderr = Terminal(tty)
    monkeypatch.setattr("sys.stderr", stderr)
    settings = msgspec.convert({"LOG_FORMAT": log_format, "LOG_LEVEL": "warning"}, Settings)

    configure_logging(settings)
    configure_logging(settings)  # once per process: a second call adds nothing

    ours = [h for h in bare_root.handlers if getattr(h, "calcmcp", False)]
    assert len(ours) == 1
    assert type(ours[0].formatter) is expected
    assert bare_root.level == logging.WARNING
    logging.getLogger("calcmcp.test").warning("hello %s", "there", extra={"fields": {"k": 1}})
    written = stderr.getvalue().strip()
    if expected is JsonLineFormatter:
        line = json.loads(written)
        assert (line["msg"], line["k"], line["level"]) == ("hello there", 1, "warning")
    else:
        assert written.endswith("WARNING calcmcp.test: hello there k=1")


def test_the_json_line_carries_an_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("calcmcp.x", logging.ERROR, "f", 1, "failed", (), None)
        record.exc_info = sys.exc_info()

    line = json.loads(JsonLineFormatter().format(record))

    assert line["msg"] == "failed"
    assert "ValueError: boom" in line["exception"]
    assert "\n" not in JsonLineFormatter().format(record)
