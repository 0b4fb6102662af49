"""``GET /events`` refusals and ``POST /broadcast``, in process.

Only requests that never open a stream are made here: the test client would wait forever for an
endless body. The streams themselves are tested in ``tests/e2e``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from src.application.ports import Subscription
from src.bootstrap import Container
from src.domain.events import MAX_MESSAGE_LENGTH, MessageBroadcast
from tests.adapters.http.conftest import DEV_ID, NOW, GetToken, basic, bearer

pytestmark = pytest.mark.anyio

EVENT_ID = re.compile(r"\d+-\d+")


@pytest.fixture
async def token(get_token: GetToken) -> str:
    """A token with both scopes, for the development client."""
    return await get_token()


@pytest.fixture
async def subscription(container: Container) -> Any:
    """A subscriber on the app's own event bus, to see what a request published."""
    sub: Subscription = await container.event_bus().subscribe(after=None, wants=lambda event: True)
    yield sub
    sub.close()


def assert_problem(response: Any, status: int, slug: str | None, title: str, detail: str) -> None:
    """An RFC 9457 problem: exact status, media type and body."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    kind = f"urn:calcmcp:problem:{slug}" if slug else "about:blank"
    assert response.json() == {"type": kind, "title": title, "status": status, "detail": detail}


def challenge(code: str, description: str, scope: str | None = None) -> str:
    """The expected RFC 6750 challenge."""
    value = f'Bearer realm="calcmcp", error="{code}", error_description="{description}"'
    return value if scope is None else f'{value}, scope="{scope}"'


ROUTES = [("GET", "/events"), ("POST", "/broadcast?message=hi")]
ROUTE_IDS = ["events", "broadcast"]


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
async def test_no_token_is_a_401_challenge(
    client: AsyncTestClient[Any], method: str, path: str
) -> None:
    response = await client.request(method, path)

    assert response.headers["www-authenticate"] == 'Bearer realm="calcmcp"'
    assert_problem(response, 401, None, "Unauthorized", "an access token is required")


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
async def test_basic_credentials_are_not_a_bearer_token(
    client: AsyncTestClient[Any], method: str, path: str
) -> None:
    headers = {"Authorization": basic(DEV_ID, "example_client_secret")}

    response = await client.request(method, path, headers=headers)

    assert response.headers["www-authenticate"] == 'Bearer realm="calcmcp"'
    assert_problem(response, 401, None, "Unauthorized", "an access token is required")


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
async def test_an_invalid_token_is_a_401_invalid_token(
    client: AsyncTestClient[Any], method: str, path: str
) -> None:
    response = await client.request(method, path, headers=bearer("not.a.token"))

    description = "the access token is malformed"
    assert response.headers["www-authenticate"] == challenge("invalid_token", description)
    assert_problem(response, 401, None, "Unauthorized", description)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=ROUTE_IDS)
async def test_a_token_without_the_sse_scope_is_forbidden(
    client: AsyncTestClient[Any], get_token: GetToken, method: str, path: str
) -> None:
    token = await get_token(scope="calculator")

    response = await client.request(method, path, headers=bearer(token))

    description = "this operation needs the 'sse' scope"
    assert response.headers["www-authenticate"] == challenge(
        "insufficient_scope", description, scope="sse"
    )
    assert_problem(response, 403, None, "Forbidden", description)


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/events"), ("POST", "/broadcast")], ids=ROUTE_IDS
)
async def test_a_token_in_the_query_string_is_invalid_request(
    client: AsyncTestClient[Any], token: str, method: str, path: str
) -> None:
    response = await client.request(method, path, params={"access_token": token, "message": "x"})

    description = "access tokens are accepted in the Authorization header only"
    assert response.headers["www-authenticate"] == challenge("invalid_request", description)
    assert_problem(response, 400, None, "Bad Request", description)
    assert token not in response.text


@pytest.mark.parametrize("types", ["bogus", "broadcast,bogus", "Broadcast"])
async def test_an_unknown_event_type_filter_is_refused(
    client: AsyncTestClient[Any], token: str, types: str
) -> None:
    response = await client.get("/events", params={"types": types}, headers=bearer(token))

    assert_problem(
        response,
        400,
        "unknown-event-type",
        "Unknown event type",
        "unknown event type; expected one of: broadcast, calculation",
    )


# --- POST /broadcast -----------------------------------------------------------------------


async def test_a_broadcast_is_published_and_acknowledged(
    client: AsyncTestClient[Any], token: str, subscription: Subscription
) -> None:
    response = await client.post("/broadcast?message=Hello%20World", headers=bearer(token))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body == {"status": "Message broadcast", "event_id": body["event_id"]}
    assert EVENT_ID.fullmatch(body["event_id"])
    (record,) = await subscription.next_batch(1.0)
    assert record.id == body["event_id"]
    assert record.event == MessageBroadcast(message="Hello World", sender=DEV_ID, occurred_at=NOW)


async def test_a_broadcast_message_may_come_as_a_json_body(
    client: AsyncTestClient[Any], token: str, subscription: Subscription
) -> None:
    message = 'line one\nline two\r\ndata: {"x": 1}\nid: 7'

    response = await client.post("/broadcast", json={"message": message}, headers=bearer(token))

    assert response.status_code == 200
    (record,) = await subscription.next_batch(1.0)
    assert record.id == response.json()["event_id"]
    assert isinstance(record.event, MessageBroadcast)
    assert record.event.message == message


async def test_event_ids_increase_with_each_broadcast(
    client: AsyncTestClient[Any], token: str
) -> None:
    ids = [
        (await client.post(f"/broadcast?message=m{i}", headers=bearer(token))).json()["event_id"]
        for i in range(3)
    ]

    boots = {event_id.split("-")[0] for event_id in ids}
    assert len(boots) == 1
    assert [int(event_id.split("-")[1]) for event_id in ids] == [1, 2, 3]


async def test_a_message_of_the_maximum_length_is_accepted(
    client: AsyncTestClient[Any], token: str
) -> None:
    message = "x" * MAX_MESSAGE_LENGTH

    response = await client.post("/broadcast", json={"message": message}, headers=bearer(token))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("request_kwargs", "slug", "title", "detail"),
    [
        (
            {"json": {"message": ""}},
            "invalid-message",
            "Invalid message",
            "message must not be empty",
        ),
        (
            {"json": {"message": "x" * (MAX_MESSAGE_LENGTH + 1)}},
            "invalid-message",
            "Invalid message",
            f"message is longer than {MAX_MESSAGE_LENGTH} characters",
        ),
        (
            {},
            None,
            "Bad Request",
            'message is required: ?message=... or a JSON body {"message": "..."}',
        ),
        (
            {"json": {"msg": "hi"}},
            None,
            "Bad Request",
            'message is required: ?message=... or a JSON body {"message": "..."}',
        ),
        (
            {"json": {"message": 42}},
            None,
            "Bad Request",
            'message is required: ?message=... or a JSON body {"message": "..."}',
        ),
    ],
    ids=["empty", "too-long", "missing", "wrong-field", "not-a-string"],
)
async def test_a_bad_message_is_refused(
    client: AsyncTestClient[Any],
    token: str,
    subscription: Subscription,
    *,
    request_kwargs: dict[str, Any],
    slug: str | None,
    title: str,
    detail: str,
) -> None:
    response = await client.post("/broadcast", headers=bearer(token), **request_kwargs)

    assert_problem(response, 400, slug, title, detail)
    assert await subscription.next_batch(0.05) == ()


async def test_a_huge_broadcast_body_is_refused_with_413(
    client: AsyncTestClient[Any], token: str
) -> None:
    body = b'{"message": "' + b"x" * 100_000 + b'"}'

    response = await client.post("/broadcast", content=body, headers=bearer(token))

    assert_problem(response, 413, None, "Request Entity Too Large", "Request Entity Too Large")


async def test_an_empty_query_message_is_refused(client: AsyncTestClient[Any], token: str) -> None:
    response = await client.post("/broadcast?message=", headers=bearer(token))

    assert_problem(response, 400, "invalid-message", "Invalid message", "message must not be empty")


async def test_a_message_that_mentions_access_token_is_not_a_token_in_the_url(
    client: AsyncTestClient[Any], token: str
) -> None:
    response = await client.post("/broadcast?message=access_token%3Dx", headers=bearer(token))

    assert response.status_code == 200
