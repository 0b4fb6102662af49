"""``/health/live`` and ``/health/ready``, with each dependency up, down, and hanging.

Redis and PostgreSQL are the real servers the contract suites use; a dependency that is down is a
closed port, and one that hangs is a loopback listener that takes connections and never answers.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from tests.adapters.http.test_mcp_protocol import serving
from tests.contracts.redis_support import REDIS_URL, free_port, keyspace
from tests.contracts.test_client_store import PG_URL
from tests.metrics_support import label_values

pytestmark = pytest.mark.anyio

Http = AsyncTestClient[Any]
FAST = 1.0  # seconds: the bound on a readiness answer, whatever hangs
ERROR_KIND = re.compile(r"timeout|[A-Za-z]+")  # a class name or "timeout": never a message


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A loopback port whose connections are accepted (by the kernel) and never answered."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield int(listener.getsockname()[1])


async def ready(client: Http) -> tuple[int, dict[str, Any]]:
    """``GET /health/ready``: its status and body, after checking what every answer has."""
    response = await client.get("/health/ready")
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    for check in body["checks"]:
        assert isinstance(check["latency_ms"], float | int)
        assert check["latency_ms"] >= 0
    return response.status_code, body


def checks(body: dict[str, Any]) -> dict[str, tuple[bool, str | None]]:
    """Each check's name, and whether it passed (with its error kind)."""
    return {check["name"]: (check["ok"], check.get("error")) for check in body["checks"]}


# --- liveness --------------------------------------------------------------------------------


async def test_liveness_is_200_json_without_a_token(tmp_path: Path) -> None:
    async with serving(tmp_path) as client:
        response = await client.get("/health/live")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.json() == {"status": "ok"}


async def test_liveness_answers_while_a_dependency_is_down(tmp_path: Path) -> None:
    async with serving(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0") as client:
        assert (await client.get("/health/live")).status_code == 200
        assert (await client.get("/health/ready")).status_code == 503


# --- readiness, everything up ----------------------------------------------------------------


async def test_readiness_checks_the_data_directory_by_default(tmp_path: Path) -> None:
    async with serving(tmp_path) as client:
        status, body = await ready(client)

    assert status == 200
    assert body["status"] == "ok"
    assert checks(body) == {"data_dir": (True, None)}
    assert list((tmp_path / "data").glob(".health-*")) == []  # the probe file is removed


async def test_readiness_checks_redis_when_it_is_configured(tmp_path: Path) -> None:
    async with (
        keyspace() as space,
        serving(tmp_path, redis_url=REDIS_URL, redis_prefix=space.prefix) as client,
    ):
        status, body = await ready(client)

    assert status == 200
    assert checks(body) == {"data_dir": (True, None), "redis": (True, None)}


async def test_readiness_checks_postgres_when_it_is_configured(tmp_path: Path) -> None:
    async with serving(tmp_path, database_url=PG_URL) as client:
        status, body = await ready(client)

    assert status == 200
    assert checks(body) == {"data_dir": (True, None), "postgres": (True, None)}


async def test_readiness_checks_everything_configured_together(tmp_path: Path) -> None:
    async with (
        keyspace() as space,
        serving(
            tmp_path, redis_url=REDIS_URL, redis_prefix=space.prefix, database_url=PG_URL
        ) as client,
    ):
        status, body = await ready(client)

    assert status == 200
    assert [check["name"] for check in body["checks"]] == ["data_dir", "redis", "postgres"]
    assert all(ok for ok, _ in checks(body).values())


# --- readiness, something down ---------------------------------------------------------------


def _remove(data_dir: Path) -> None:
    shutil.rmtree(data_dir)


def _replace_with_a_file(data_dir: Path) -> None:
    shutil.rmtree(data_dir)
    data_dir.write_text("not a directory")


@pytest.mark.parametrize(
    ("break_it", "kind"),
    [(_remove, "FileNotFoundError"), (_replace_with_a_file, "NotADirectoryError")],
    ids=["removed", "a-file"],
)
async def test_readiness_is_503_naming_a_data_directory_that_cannot_be_written(
    tmp_path: Path, break_it: Any, kind: str
) -> None:
    # chmod would not do: the tests may run as root, who writes anywhere
    async with serving(tmp_path) as client:
        assert (await client.get("/health/ready")).status_code == 200
        break_it(tmp_path / "data")
        status, body = await ready(client)

    assert status == 503
    assert body["status"] == "unavailable"
    assert checks(body) == {"data_dir": (False, kind)}


async def test_readiness_is_503_naming_redis_when_nothing_listens(tmp_path: Path) -> None:
    async with serving(tmp_path, redis_url=f"redis://127.0.0.1:{free_port()}/0") as client:
        status, body = await ready(client)

    assert status == 503
    assert body["status"] == "unavailable"
    assert checks(body) == {"data_dir": (True, None), "redis": (False, "ConnectionError")}


async def test_readiness_is_503_naming_postgres_when_it_is_unreachable(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    async with serving(tmp_path, database_url=url) as client:
        status, body = await ready(client)

    assert status == 503
    ok, kind = checks(body)["postgres"]
    assert not ok
    assert kind is not None
    assert ERROR_KIND.fullmatch(kind)
    assert checks(body)["data_dir"] == (True, None)


@pytest.mark.parametrize(
    ("setting", "url", "name"),
    [
        ("redis_url", "redis://127.0.0.1:{port}/0", "redis"),
        ("database_url", "postgresql://postgres@127.0.0.1:{port}/test", "postgres"),
    ],
    ids=["redis", "postgres"],
)
async def test_readiness_answers_within_a_second_when_a_dependency_hangs(
    tmp_path: Path, setting: str, url: str, name: str
) -> None:
    with silent_listener() as port:
        async with serving(tmp_path, **{setting: url.format(port=port)}) as client:
            for _ in range(2):  # and again: the first timed-out probe leaves nothing stuck
                started = time.perf_counter()
                status, body = await ready(client)
                elapsed = time.perf_counter() - started

                assert elapsed < FAST
                assert status == 503
                assert checks(body) == {"data_dir": (True, None), name: (False, "timeout")}


async def test_a_failure_body_names_the_error_kind_never_a_host_or_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    redis_port = free_port()
    password = "hunter2-b9f3c1"
    with silent_listener() as hanging:
        async with serving(
            tmp_path,
            redis_url=f"redis://:{password}@localhost:{redis_port}/0",
            database_url=f"postgresql://calc:{password}@localhost:{hanging}/calc",
        ) as client:
            caplog.set_level(logging.WARNING, logger="calcmcp.health")
            response = await client.get("/health/ready")

    assert response.status_code == 503
    for hidden in (password, "localhost", str(redis_port), str(hanging), "calc:"):
        assert hidden not in response.text
    for check in response.json()["checks"]:
        assert set(check) <= {"name", "ok", "latency_ms", "error"}
        if not check["ok"]:
            assert ERROR_KIND.fullmatch(check["error"])
    # the operator learns more, in the server's own log (and still no password)
    failures = [r.getMessage() for r in caplog.records if r.name == "calcmcp.health"]
    assert any("redis" in line and str(redis_port) in line for line in failures), failures
    assert any("postgres" in line and "no answer" in line for line in failures), failures
    assert not [line for line in failures if password in line]


# --- quiet routes ----------------------------------------------------------------------------


async def test_probes_and_scrapes_are_neither_logged_nor_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="calcmcp.access")
    async with serving(tmp_path) as client:
        for path in ("/health/live", "/health/ready", "/metrics", "/health/live"):
            assert (await client.get(path)).status_code == 200
        quiet = [r for r in caplog.records if r.name == "calcmcp.access"]
        assert (await client.get("/")).status_code == 200  # any other route is logged
        page = (await client.get("/metrics")).text

    assert quiet == []
    logged = [r for r in caplog.records if r.name == "calcmcp.access"]
    assert [r.fields["route"] for r in logged] == ["/"]  # type: ignore[attr-defined]
    assert label_values(page, "calcmcp_http_requests_total", "route") == {"/"}


async def test_shutdown_is_not_held_up_by_a_redis_that_hangs(tmp_path: Path) -> None:
    with silent_listener() as port:
        context = serving(tmp_path, redis_url=f"redis://127.0.0.1:{port}/0")
        client = await context.__aenter__()
        status, _ = await ready(client)  # the adapters have tried to reach it
        assert status == 503
        started = time.perf_counter()
        await context.__aexit__(None, None, None)
        assert time.perf_counter() - started < 2.0  # uvicorn's grace period
