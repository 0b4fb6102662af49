"""The log-secret check: no log line of the whole test run carries a secret, token or ticket.

It runs last (``tests/log_secrets.py`` moves it there), after a small flow of its own that uses
every kind of secret (a client secret sent in the form and as HTTP Basic, a wrong one, tokens
used, introspected and revoked, a stream ticket redeemed, an MCP call), so it always has lines to
read. Then it greps every line the run's in-process services logged, and the output of every
server process the run started, for every secret registered during the run and for anything
shaped like a JWT or a private key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from src.bootstrap import build_container
from tests.adapters.http.conftest import (
    DEV_ID,
    DEV_SECRET,
    EXTRA_CLIENTS,
    JWT_SECRET,
    ODD_ID,
    ODD_SECRET,
    basic,
    bearer,
    make_settings,
)
from tests.adapters.http.test_mcp_protocol import (
    asgi_stream,
    assert_result,
    fetch_token,
    post_modern,
    running,
)
from tests.e2e.conftest import OTHER_SECRET
from tests.log_secrets import MARKER, RAN, SECRETS, log_file

pytestmark = [pytest.mark.anyio, getattr(pytest.mark, MARKER)]

WRONG_SECRET = "not-the-secret-5c0ffee"
KNOWN = [DEV_SECRET, JWT_SECRET, OTHER_SECRET, WRONG_SECRET]
KNOWN += [str(client["client_secret"]) for client in EXTRA_CLIENTS]


def rid(step: str) -> dict[str, str]:
    """The ``X-Request-ID`` that marks a request of this flow in the log."""
    return {"X-Request-ID": f"log-secret-check-{step}"}


async def flow(data_dir: Path) -> dict[str, str]:
    """Use every kind of secret against a real app; returns the tokens and ticket used."""
    container = build_container(make_settings(data_dir))  # the real id source: random tickets
    used: dict[str, str] = {}
    async with running(container) as http:
        form = {"grant_type": "client_credentials", "client_id": DEV_ID}
        issued = await http.post(
            "/token", data={**form, "client_secret": DEV_SECRET}, headers=rid("issue")
        )
        used["form"] = issued.json()["access_token"]
        wrong = await http.post(
            "/token", data={**form, "client_secret": WRONG_SECRET}, headers=rid("wrong")
        )
        assert wrong.status_code == 401
        by_basic = await http.post(
            "/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic(ODD_ID, ODD_SECRET), **rid("basic")},
        )
        used["basic"] = by_basic.json()["access_token"]
        sum_ = await http.post(
            "/calculator/add?a=1&b=2", headers={**bearer(used["form"]), **rid("add")}
        )
        assert sum_.status_code == 200
        ticket = await http.post(
            "/events/ticket", headers={**bearer(used["form"]), **rid("ticket")}
        )
        used["ticket"] = ticket.json()["ticket"]
        async with asgi_stream(
            http.app, "GET", f"/events?ticket={used['ticket']}", rid("stream")
        ) as stream:
            assert stream.status == 200
            await stream.read_until(b"\n\n")
        auth = {"Authorization": basic(ODD_ID, ODD_SECRET)}
        introspected = await http.post(
            "/introspect", data={"token": used["basic"]}, headers={**auth, **rid("introspect")}
        )
        assert introspected.json()["active"] is True
        revoked = await http.post(
            "/revoke", data={"token": used["basic"]}, headers={**auth, **rid("revoke")}
        )
        assert revoked.status_code == 200
        used["mcp"] = await fetch_token(http)
        call = {"name": "add", "arguments": {"a": 1, "b": 2}}
        assert_result(await post_modern(http, used["mcp"], "tools/call", call, headers=rid("mcp")))
    return used


def own_lines(lines: list[str]) -> dict[str, list[dict[str, Any]]]:
    """This flow's JSON lines, by the step their request id names."""
    steps: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        record = json.loads(line)
        request_id = str(record.get("request_id", ""))
        if request_id.startswith("log-secret-check-"):
            steps.setdefault(request_id.removeprefix("log-secret-check-"), []).append(record)
    return steps


def server_logs(root: Path) -> list[str]:
    """Every line the server processes of the run wrote (``tests/e2e``'s ``server.log``)."""
    return [
        line
        for log in sorted(root.rglob("server.log"))
        for line in log.read_text(errors="replace").splitlines()
    ]


async def test_no_log_line_of_the_run_carries_a_secret(
    pytestconfig: pytest.Config, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = log_file(pytestconfig)
    before = path.read_text(encoding="utf-8").splitlines()
    used = await flow(tmp_path / "data")
    SECRETS.add(*KNOWN)
    lines = path.read_text(encoding="utf-8").splitlines()

    # there is something to check: this flow's requests and security events are in the file
    steps = own_lines(lines[len(before) :])
    events = {step: {r.get("event") for r in records} for step, records in steps.items()}
    assert "token.issued" in events["issue"]
    assert "token.issued" in events["basic"]
    assert "token.refused" in events["wrong"]
    assert {"introspect.active", "revoke.revoked"} <= events["introspect"] | events["revoke"]
    routes = {step: {r.get("route") for r in records} for step, records in steps.items()}
    assert routes["stream"] == {"/events"}
    assert routes["mcp"] == {"/mcp"}
    assert used["ticket"] in SECRETS  # registered where it was made
    # and so are the lines of every test before it, when the token tests ran
    if any(nodeid.startswith("tests/adapters/http/test_token.py") for nodeid in RAN):
        earlier = "\n".join(before)
        assert '"event":"token.issued"' in earlier
        assert '"event":"token.refused"' in earlier

    processes = server_logs(tmp_path_factory.getbasetemp())
    if any(nodeid.startswith("tests/e2e/") for nodeid in RAN):
        assert any('"logger":"calcmcp' in line for line in processes)  # their output is read
    leaks = SECRETS.leaks(lines + processes)
    assert not leaks, "\n".join(leaks)
    assert len(SECRETS) >= len(KNOWN)
