"""``POST /events/ticket``, the refusals of ``GET /events?ticket=...``, and the stream limits.

In process: only requests that never open a stream (a test client would wait forever for an
endless body). Streams opened with tickets, and the limits with real streams open, are tested
against the real server in ``tests/e2e``.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from src.application.redeem_stream_ticket import RedeemStreamTicketCommand
from src.bootstrap import Container, Settings, create_app
from tests.adapters.http.conftest import (
    PUBLIC_URL,
    FixedClock,
    GetToken,
    bearer,
    make_container,
    make_settings,
)

pytestmark = pytest.mark.anyio

UNKNOWN = "the ticket is unknown or has already been used; get a new one from POST /events/ticket"
EXPIRED = "the ticket has expired; get a new one from POST /events/ticket"


@pytest.fixture
async def token(get_token: GetToken) -> str:
    return await get_token()


async def issue(client: AsyncTestClient[Any], token: str) -> str:
    response = await client.post("/events/ticket", headers=bearer(token))
    assert response.status_code == 200, response.text
    ticket: str = response.json()["ticket"]
    return ticket


def assert_ticket_refused(response: Any, detail: str) -> None:
    """A 401 problem whose detail says what is wrong with the ticket, with a bearer challenge."""
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": detail,
    }
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="calcmcp", error="invalid_token"')


def assert_bad_request(response: Any, detail: str) -> None:
    assert response.status_code == 400
    assert response.json()["detail"] == detail
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


# --- POST /events/ticket -------------------------------------------------------------------


async def test_a_ticket_is_issued_for_a_token_with_the_sse_scope(
    client: AsyncTestClient[Any], token: str
) -> None:
    response = await client.post("/events/ticket", headers=bearer(token))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"ticket", "expires_in"}
    assert body["expires_in"] == 30
    assert body["ticket"] not in token


async def test_a_ticket_stands_for_the_callers_principal_at_this_resource(
    client: AsyncTestClient[Any], container: Container, token: str
) -> None:
    ticket = await issue(client, token)
    introspected = await client.post(
        "/introspect",
        data={"token": token},
        auth=("example_client_id", "example_client_secret"),
    )

    principal = await container.redeem_stream_ticket().execute(
        RedeemStreamTicketCommand(ticket=ticket, resource=PUBLIC_URL)
    )

    claims = introspected.json()
    assert principal.client_id == "example_client_id"
    assert principal.scopes == frozenset({"calculator", "sse"})
    assert principal.token_id == claims["jti"]
    assert principal.expires_at == claims["exp"]


async def test_the_ticket_lifetime_is_configurable(tmp_path: Any, clock: FixedClock) -> None:
    settings = make_settings(tmp_path / "other", sse_ticket_lifetime=5.0)
    app = create_app(make_container(settings, clock))
    async with AsyncTestClient(app=app, raise_server_exceptions=False) as other:
        form = {
            "grant_type": "client_credentials",
            "client_id": "example_client_id",
            "client_secret": "example_client_secret",
            "scope": "sse",
        }
        token = (await other.post("/token", data=form)).json()["access_token"]
        response = await other.post("/events/ticket", headers=bearer(token))

    assert response.json()["expires_in"] == 5


async def test_issuing_a_ticket_needs_a_token(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/events/ticket")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="calcmcp"'


async def test_issuing_a_ticket_needs_the_sse_scope(
    client: AsyncTestClient[Any], get_token: GetToken
) -> None:
    token = await get_token(scope="calculator")

    response = await client.post("/events/ticket", headers=bearer(token))

    assert response.status_code == 403
    assert response.json()["detail"] == "this operation needs the 'sse' scope"


async def test_a_ticket_cannot_issue_a_ticket(client: AsyncTestClient[Any], token: str) -> None:
    ticket = await issue(client, token)

    response = await client.post("/events/ticket", params={"ticket": ticket})

    assert_bad_request(response, "a ticket is accepted by GET /events only")


# --- GET /events?ticket=... refusals --------------------------------------------------------


@pytest.mark.parametrize("garbage", ["", "nonsense", "x" * 500, "eyJhbGciOiJIUzI1NiJ9.e30.sig"])
async def test_a_garbage_ticket_is_a_401(client: AsyncTestClient[Any], garbage: str) -> None:
    response = await client.get("/events", params={"ticket": garbage})

    assert_ticket_refused(response, UNKNOWN)


async def test_a_used_ticket_is_a_401(
    client: AsyncTestClient[Any], container: Container, token: str
) -> None:
    ticket = await issue(client, token)
    await container.redeem_stream_ticket().execute(  # its one use (a stream is not opened here)
        RedeemStreamTicketCommand(ticket=ticket, resource=PUBLIC_URL)
    )

    response = await client.get("/events", params={"ticket": ticket})

    assert_ticket_refused(response, UNKNOWN)


async def test_an_expired_ticket_is_a_401(
    client: AsyncTestClient[Any], clock: FixedClock, token: str
) -> None:
    ticket = await issue(client, token)
    clock.value += 30

    response = await client.get("/events", params={"ticket": ticket})

    assert_ticket_refused(response, EXPIRED)


async def test_a_ticket_of_a_revoked_token_is_a_401(
    client: AsyncTestClient[Any], token: str
) -> None:
    ticket = await issue(client, token)
    revoked = await client.post(
        "/revoke", data={"token": token}, auth=("example_client_id", "example_client_secret")
    )
    assert revoked.status_code == 200

    response = await client.get("/events", params={"ticket": ticket})

    assert_ticket_refused(response, "the ticket's access token has been revoked")


async def test_a_refused_ticket_is_spent(client: AsyncTestClient[Any], token: str) -> None:
    ticket = await issue(client, token)
    first = await client.get("/events", params={"ticket": ticket, "types": "bogus"})

    second = await client.get("/events", params={"ticket": ticket})

    assert first.status_code == 400  # redeemed by the middleware, then the filter was refused
    assert_ticket_refused(second, UNKNOWN)


async def test_a_ticket_and_a_header_together_are_refused(
    client: AsyncTestClient[Any], token: str
) -> None:
    ticket = await issue(client, token)

    response = await client.get("/events", params={"ticket": ticket}, headers=bearer(token))

    assert_bad_request(response, "send a ticket or an Authorization header, not both")


async def test_two_tickets_are_refused(client: AsyncTestClient[Any], token: str) -> None:
    first, second = await issue(client, token), await issue(client, token)

    response = await client.get(f"/events?ticket={first}&ticket={second}")

    assert_bad_request(response, "send one ticket")


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/broadcast?message=hi"), ("POST", "/calculator/add?a=1&b=2")],
    ids=["broadcast", "calculator"],
)
async def test_a_ticket_opens_nothing_but_the_stream(
    client: AsyncTestClient[Any], token: str, method: str, path: str
) -> None:
    ticket = await issue(client, token)

    response = await client.request(method, f"{path}&ticket={ticket}")

    assert_bad_request(response, "a ticket is accepted by GET /events only")


async def test_a_ticket_is_no_access_token(client: AsyncTestClient[Any], token: str) -> None:
    ticket = await issue(client, token)

    response = await client.get("/events", headers=bearer(ticket))

    assert response.status_code == 401
    assert response.json()["detail"] == "the access token is malformed"


# --- limits --------------------------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    """Small stream limits: 3 in total, 2 per client."""
    return make_settings(tmp_path, sse_max_streams=3, sse_max_streams_per_client=2)


async def test_past_the_per_client_limit_a_stream_is_a_429_with_retry_after(
    client: AsyncTestClient[Any], container: Container, token: str
) -> None:
    slots = container.stream_slots()
    await slots.acquire("example_client_id")
    await slots.acquire("example_client_id")

    response = await client.get("/events", headers=bearer(token))

    assert response.status_code == 429
    assert response.headers["retry-after"] == "5"
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "urn:calcmcp:problem:too-many-streams",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "this client has as many event streams open as it may; retry after 5 s",
    }
    assert container.event_bus().subscriber_count == 0


async def test_past_the_total_limit_a_stream_is_a_429_with_retry_after(
    client: AsyncTestClient[Any], container: Container, token: str
) -> None:
    slots = container.stream_slots()
    for client_id in ("a", "b", "c"):
        await slots.acquire(client_id)

    response = await client.get("/events", params={"ticket": await issue(client, token)})

    assert response.status_code == 429
    assert response.headers["retry-after"] == "5"
    assert response.json()["detail"] == (
        "the server has as many event streams open as it may; retry after 5 s"
    )
