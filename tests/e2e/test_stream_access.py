"""Who may hold a stream, and for how long, on the real server: tickets, limits, revocation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

import anyio
import httpx
import pytest

from tests.e2e.conftest import (
    CLIENTS,
    DEV_ID,
    DEV_SECRET,
    OTHER_ID,
    OTHER_SECRET,
    TIMEOUT,
    EventStreamReader,
    Server,
    bearer,
    broadcast,
    get_token,
    open_stream,
)

pytestmark = pytest.mark.anyio

UNKNOWN_TICKET = (
    "the ticket is unknown or has already been used; get a new one from POST /events/ticket"
)


async def new_ticket(client: httpx.AsyncClient, token: str) -> str:
    response = await client.post("/events/ticket", headers=bearer(token))
    assert response.status_code == 200, response.text
    ticket: str = response.json()["ticket"]
    return ticket


@asynccontextmanager
async def ticket_stream(
    client: httpx.AsyncClient, ticket: str, **params: str
) -> AsyncIterator[EventStreamReader]:
    """``GET /events?ticket=...`` with no Authorization header, as a browser's EventSource."""
    query = {"ticket": ticket, **params}
    headers = {"Accept": "text/event-stream"}
    async with client.stream("GET", "/events", params=query, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        reader = EventStreamReader(response)
        assert (await reader.next_event()).lines == [b"retry: 3000"]
        yield reader


async def assert_refused(
    client: httpx.AsyncClient, status: int, **kwargs: object
) -> httpx.Response:
    """A request to /events that must be refused at once (never a hung connection)."""
    response = await client.get("/events", timeout=2.0, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    return response


# --- tickets -------------------------------------------------------------------------------


async def test_a_ticket_opens_a_stream_once(http: httpx.AsyncClient) -> None:
    token = await get_token(http)
    ticket = await new_ticket(http, token)

    async with ticket_stream(http, ticket) as stream:
        event_id = await broadcast(http, token, "for the ticket holder")
        block = await stream.next_event()
        reused = await assert_refused(http, 401, params={"ticket": ticket})

    assert block.id == event_id
    assert block.data["message"] == "for the ticket holder"
    assert reused.json()["detail"] == UNKNOWN_TICKET
    assert reused.headers["www-authenticate"].startswith('Bearer realm="calcmcp"')


async def test_a_ticket_stream_resumes_after_last_event_id_and_filters(
    http: httpx.AsyncClient,
) -> None:
    token = await get_token(http)
    seen = await broadcast(http, token, "seen")
    missed = await broadcast(http, token, "missed")
    calculated = await http.post("/calculator/add?a=1&b=1", headers=bearer(token))
    assert calculated.status_code == 200

    ticket = await new_ticket(http, token)
    async with ticket_stream(http, ticket, lastEventId=seen, types="broadcast") as stream:
        replayed = await stream.next_event()
        live = await broadcast(http, token, "live")
        after = await stream.next_event()

    assert (replayed.id, after.id) == (missed, live)


async def test_a_ticket_stream_sees_only_its_own_clients_calculations(
    http: httpx.AsyncClient,
) -> None:
    mine, theirs = await get_token(http), await get_token(http, OTHER_ID, OTHER_SECRET)

    async with ticket_stream(http, await new_ticket(http, mine), types="calculation") as stream:
        await http.post("/calculator/add?a=100&b=1", headers=bearer(theirs))
        await http.post("/calculator/add?a=1&b=1", headers=bearer(mine))
        block = await stream.next_event()

    assert (block.data["client_id"], block.data["result"]) == (DEV_ID, 2)


async def test_an_expired_ticket_is_refused(launch: Callable[..., Server]) -> None:
    server = launch(sse_ticket_lifetime="0.2")
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as client:
        ticket = await new_ticket(client, await get_token(client))
        await anyio.sleep(0.5)

        response = await assert_refused(client, 401, params={"ticket": ticket})

    assert response.json()["detail"] == (
        "the ticket has expired; get a new one from POST /events/ticket"
    )


# --- limits --------------------------------------------------------------------------------


async def test_limits_answer_429_with_retry_after_and_free_up_when_streams_close(
    launch: Callable[..., Server],
) -> None:
    server = launch(sse_max_streams="3", sse_max_streams_per_client="2", clients=CLIENTS)
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as client:
        mine = await get_token(client)
        theirs = await get_token(client, OTHER_ID, OTHER_SECRET)
        async with AsyncExitStack() as streams:
            first = await streams.enter_async_context(open_stream(client, mine))
            await streams.enter_async_context(open_stream(client, mine))
            per_client = await assert_refused(client, 429, headers=bearer(mine))
            async with open_stream(client, theirs):
                in_total = await assert_refused(client, 429, headers=bearer(theirs))
                by_ticket = await assert_refused(
                    client, 429, params={"ticket": await new_ticket(client, theirs)}
                )
            event_id = await broadcast(client, mine, "the open streams go on")
            assert (await first.next_event()).id == event_id
        # every stream closed by its client gives its slot back (once the server has seen it go)
        await eventually_opens(client, mine, mine)
        await eventually_opens(client, mine, theirs)

    for refused, whose in ((per_client, "this client"), (in_total, "the server")):
        assert refused.headers["retry-after"] == "5"
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:calcmcp:problem:too-many-streams"
        assert refused.json()["detail"].startswith(whose)
    assert by_ticket.json()["detail"].startswith("the server")


async def test_streams_ended_by_the_server_give_their_slots_back(
    launch: Callable[..., Server],
) -> None:
    server = launch(sse_max_streams_per_client="1", sse_auth_check="0.2")
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as client:
        token = await get_token(client)
        async with open_stream(client, token) as stream:
            await assert_refused(client, 429, headers=bearer(token))
            await _revoke(client, token)
            assert (await stream.next_event(2.0)).event == "end"
            assert await stream.next_block(2.0) is None
        await eventually_opens(client, await get_token(client))


# --- revocation ----------------------------------------------------------------------------


async def test_a_revoked_token_ends_its_streams_and_only_those(
    launch: Callable[..., Server],
) -> None:
    server = launch(sse_auth_check="0.2", clients=CLIENTS)
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as client:
        doomed, kept = await get_token(client), await get_token(client)
        ticket = await new_ticket(client, doomed)
        async with (
            open_stream(client, doomed) as by_header,
            ticket_stream(client, ticket) as by_ticket,
            open_stream(client, kept) as other,
        ):
            await _revoke(client, doomed)
            endings = [await by_header.next_event(2.0), await by_ticket.next_event(2.0)]
            closed = [await by_header.next_block(2.0), await by_ticket.next_block(2.0)]
            event_id = await broadcast(client, kept, "still here")
            assert (await other.next_event()).id == event_id

    for end in endings:
        assert end.event == "end"
        assert end.id is None
        assert end.data == {
            "reason": "revoked",
            "message": (
                "the access token has been revoked; reconnect with a fresh token and Last-Event-ID"
            ),
            "retry": True,
        }
    assert closed == [None, None]


async def eventually_opens(client: httpx.AsyncClient, *tokens: str) -> None:
    """Streams for ``tokens`` open together within 2 s (slots come back as the server sees
    earlier streams close)."""
    with anyio.fail_after(2.0):
        while True:
            try:
                async with AsyncExitStack() as stack:
                    for token in tokens:
                        await stack.enter_async_context(open_stream(client, token))
                    return
            except AssertionError:  # a 429: not yet
                await anyio.sleep(0.05)


async def _revoke(client: httpx.AsyncClient, token: str) -> None:
    response = await client.post("/revoke", data={"token": token}, auth=(DEV_ID, DEV_SECRET))
    assert response.status_code == 200, response.text


async def test_each_stream_gets_its_own_response_headers(http: httpx.AsyncClient) -> None:
    token = await get_token(http)
    seen: list[list[str]] = []
    for _ in range(3):
        async with open_stream(http, token) as stream:
            seen.append([name for name, _ in stream.response.headers.multi_items()])

    for names in seen:
        assert len(names) == len(set(names)), names  # nothing piled up from earlier responses
    assert seen[0] == seen[2]
