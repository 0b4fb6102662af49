"""The real server, logging everything (DEBUG, JSON), never writes a secret, token or ticket.

Every way a credential reaches the server is used once (the token endpoint by form, by HTTP
Basic and with a wrong secret; the calculator; introspection and revocation; a stream ticket;
MCP in both eras; a token misplaced in a URL), then the server's whole output is grepped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.adapters.http.conftest import basic
from tests.adapters.http.test_mcp_protocol import LATEST_HANDSHAKE, modern_headers, modern_request
from tests.e2e.conftest import (
    CLIENTS,
    DEV_ID,
    DEV_SECRET,
    OTHER_ID,
    OTHER_SECRET,
    TIMEOUT,
    Server,
    bearer,
    get_token,
    stop,
)
from tests.e2e.test_stream_access import new_ticket, ticket_stream
from tests.log_secrets import SECRETS, Secrets
from tests.metrics_support import value

pytestmark = pytest.mark.anyio

WRONG_SECRET = "wrong-secret-for-the-e2e-log-check"


async def token_for(client: httpx.AsyncClient, resource: str) -> str:
    """A development-client token for ``resource``."""
    form = {
        "grant_type": "client_credentials",
        "client_id": DEV_ID,
        "client_secret": DEV_SECRET,
        "resource": resource,
    }
    response = await client.post("/token", data=form)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


async def use_every_credential(client: httpx.AsyncClient, server: Server) -> list[str]:
    """Drive the server with every kind of credential; returns the values it must not log."""
    used = [DEV_SECRET, OTHER_SECRET, WRONG_SECRET]
    token = await get_token(client)
    used.append(token)
    form = {"grant_type": "client_credentials", "client_id": DEV_ID}
    wrong = await client.post("/token", data={**form, "client_secret": WRONG_SECRET})
    assert wrong.status_code == 401
    basic_auth = {"Authorization": basic(OTHER_ID, OTHER_SECRET)}
    other = await client.post(
        "/token", data={"grant_type": "client_credentials"}, headers=basic_auth
    )
    assert other.status_code == 200
    used.append(other.json()["access_token"])
    added = await client.post("/calculator/add", json={"a": 1, "b": 2}, headers=bearer(token))
    assert added.json()["result"] == 3
    in_url = await client.get("/events", params={"access_token": token})
    assert in_url.status_code == 400  # a token in a URL is refused, and not logged either
    ticket = await new_ticket(client, token)
    used.append(ticket)
    async with ticket_stream(client, ticket):
        pass
    introspected = await client.post("/introspect", data={"token": used[4]}, headers=basic_auth)
    assert introspected.json()["active"] is True
    assert (
        await client.post("/revoke", data={"token": used[4]}, headers=basic_auth)
    ).status_code == 200
    refused = await client.post("/calculator/add?a=1&b=2", headers=bearer(used[4]))
    assert refused.status_code == 401
    used += await use_mcp(client, server)
    return used


async def use_mcp(client: httpx.AsyncClient, server: Server) -> list[str]:
    """A stateless tools/call, and a 2025 handshake; returns the token used."""
    token = await token_for(client, f"http://localhost:{server.port}/mcp")
    body = modern_request("tools/call", {"name": "divide", "arguments": {"a": 1, "b": 4}})
    called = await client.post(
        "/mcp", content=json.dumps(body), headers=modern_headers(token, body)
    )
    assert called.json()["result"]["structuredContent"]["result"] == 0.25
    initialize = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {"protocolVersion": LATEST_HANDSHAKE, "capabilities": {}, "clientInfo": {}},
    }
    headers = {**bearer(token), "Accept": "application/json, text/event-stream"}
    started = await client.post("/mcp", json=initialize, headers=headers)
    assert started.status_code == 200, started.text
    return [token, started.headers["mcp-session-id"]]


def json_lines(output: str) -> list[dict[str, Any]]:
    """The lines of the server's output that are JSON records."""
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


async def test_the_server_logs_no_secret_even_at_debug(launch: Callable[..., Server]) -> None:
    server = launch(log_level="debug", log_format="json", clients=CLIENTS)
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as client:
        used = await use_every_credential(client, server)
        page = (await client.get("/metrics")).text
    stop(server)  # everything it had to say is written
    output = server.log.read_text(errors="replace")

    records = json_lines(output)
    access = {(r.get("route"), r.get("status")) for r in records if r["logger"] == "calcmcp.access"}
    assert {("/token", 200), ("/token", 401), ("/calculator/add", 200), ("/mcp", 200)} <= access
    assert ("/events", 400) in access
    events = {r.get("event") for r in records if r["logger"] == "calcmcp.audit"}
    assert {"token.issued", "token.refused", "introspect.active", "revoke.revoked"} <= events

    # the same requests, counted by the real server
    assert value(page, "calcmcp_tokens_refused_total", reason="InvalidClient") == 1
    assert value(page, "calcmcp_tokens_issued_total") == 3
    call = {"method": "tools/call", "tool": "divide", "era": "modern", "outcome": "ok"}
    assert value(page, "calcmcp_mcp_calls_total", **call) == 1
    assert value(page, "calcmcp_sse_streams_open", stream="events") == 0

    secrets = Secrets()
    secrets.add(*used, *(token.rsplit(".", 1)[1] for token in used if token.count(".") == 2))
    SECRETS.add(*used)  # for the run's own check, which reads this output again
    leaks = secrets.leaks(output.splitlines())
    assert not leaks, "\n".join(leaks)
