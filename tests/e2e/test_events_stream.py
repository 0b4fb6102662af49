"""``GET /events`` on the real server: replay on reconnect, resets, framing, filters, isolation."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.e2e.conftest import (
    DEV_ID,
    OTHER_ID,
    OTHER_SECRET,
    TIMEOUT,
    Block,
    EventStreamReader,
    Server,
    bearer,
    broadcast,
    get_token,
    open_stream,
)

pytestmark = pytest.mark.anyio

RESET = {
    "reason": "gap",
    "message": "events after your Last-Event-ID are no longer kept; what follows is all there is",
    "retry": True,
}


@pytest.fixture
async def token(http: httpx.AsyncClient) -> str:
    """A token of the development client with both scopes."""
    return await get_token(http)


def assert_broadcast(block: Block, event_id: str, message: str, sender: str = DEV_ID) -> None:
    """``block`` is exactly the broadcast ``event_id`` of ``message``: three lines, JSON data."""
    assert block.lines[:2] == [f"id: {event_id}".encode(), b"event: broadcast"]
    assert len(block.lines) == 3
    assert block.lines[2].startswith(b"data: {")
    data = block.data
    assert data == {
        "type": "broadcast",
        "message": message,
        "sender": sender,
        "occurred_at": data["occurred_at"],
    }


def assert_calculation(block: Block, operation: str, result: int, client_id: str) -> None:
    """``block`` is a calculation event of ``client_id``."""
    assert block.event == "calculation"
    assert block.id is not None
    data = block.data
    assert data["type"] == "calculation"
    assert (data["operation"], data["result"], data["client_id"]) == (operation, result, client_id)


async def drain_until(stream: EventStreamReader, event_id: str) -> list[Block]:
    """Every block up to and including the event ``event_id``."""
    blocks = []
    while True:
        block = await stream.next_event()
        blocks.append(block)
        if block.id == event_id:
            return blocks


# --- resuming ------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["header", "query"])
async def test_reconnecting_replays_exactly_the_missed_events_once(
    http: httpx.AsyncClient, token: str, via: str
) -> None:
    async with open_stream(http, token) as stream:
        seen = await broadcast(http, token, "before the disconnect")
        assert_broadcast(await stream.next_event(), seen, "before the disconnect")

    missed = [await broadcast(http, token, f"missed {i}") for i in range(5)]
    headers = {"Last-Event-ID": seen} if via == "header" else None
    params = {"lastEventId": seen} if via == "query" else None
    async with open_stream(http, token, headers=headers, params=params) as stream:
        replayed = [await stream.next_event() for _ in missed]
        sentinel = await broadcast(http, token, "live again")
        after = await stream.next_event()

    for block, (i, event_id) in zip(replayed, enumerate(missed), strict=True):
        assert_broadcast(block, event_id, f"missed {i}")
    assert_broadcast(after, sentinel, "live again")  # nothing replayed twice, nothing extra


async def test_resuming_from_the_latest_id_replays_nothing(
    http: httpx.AsyncClient, token: str
) -> None:
    latest = await broadcast(http, token, "latest")

    async with open_stream(http, token, headers={"Last-Event-ID": latest}) as stream:
        sentinel = await broadcast(http, token, "next")
        block = await stream.next_event()

    assert_broadcast(block, sentinel, "next")


async def test_the_header_wins_over_the_query_parameter(
    http: httpx.AsyncClient, token: str
) -> None:
    first = await broadcast(http, token, "first")
    second = await broadcast(http, token, "second")

    async with open_stream(
        http, token, headers={"Last-Event-ID": first}, params={"lastEventId": second}
    ) as stream:
        block = await stream.next_event()

    assert_broadcast(block, second, "second")


async def test_an_id_from_the_future_gets_a_reset(http: httpx.AsyncClient, token: str) -> None:
    latest = await broadcast(http, token, "now")
    boot, _, sequence = latest.rpartition("-")
    future = f"{boot}-{int(sequence) + 1000}"

    async with open_stream(http, token, headers={"Last-Event-ID": future}) as stream:
        reset = await stream.next_event()

    assert reset.lines[0] == b"event: reset"
    assert reset.id is None  # a notice never moves the client's Last-Event-ID
    assert reset.data == RESET


@pytest.mark.parametrize("last_id", ["1-1", "0-0", "not-an-id", "123", "-", "x" * 200])
async def test_an_unknown_or_old_id_gets_a_reset_first(
    http: httpx.AsyncClient, token: str, last_id: str
) -> None:
    async with open_stream(http, token, headers={"Last-Event-ID": last_id}) as stream:
        reset = await stream.next_event()
        sentinel = await broadcast(http, token, f"after reset {last_id[:8]}")
        replayed = await drain_until(stream, sentinel)

    assert reset.lines == [b"event: reset", reset.lines[1]]
    assert reset.data == RESET
    # what follows is the whole log still kept, in order, ending with the live event
    ids = [block.id for block in replayed]
    assert ids.count(sentinel) == 1
    assert all(block.event in ("broadcast", "calculation") for block in replayed)
    sequences = [int(event_id.rpartition("-")[2]) for event_id in ids if event_id]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == len(sequences)


# --- framing -------------------------------------------------------------------------------

INJECTION = (
    'one\ntwo\r\nthree\rfour\r\n\r\ndata: {"injected": true}\nid: 999999\nevent: end\n\n'
    "retry: 1\n: a comment\n\u2028\u2029\x85\x00\x1b tail"
)


@pytest.mark.parametrize("transport", ["json-body", "query"])
async def test_a_message_cannot_inject_fields_or_events(
    http: httpx.AsyncClient, token: str, transport: str
) -> None:
    async with open_stream(http, token) as stream:
        if transport == "query":
            response = await http.post(
                "/broadcast", params={"message": INJECTION}, headers=bearer(token)
            )
            assert response.status_code == 200
            event_id = response.json()["event_id"]
        else:
            event_id = await broadcast(http, token, INJECTION)
        block = await stream.next_event()
        sentinel = await broadcast(http, token, "sentinel")
        after = await stream.next_event()

    assert_broadcast(block, event_id, INJECTION)
    assert block.data["message"] == INJECTION
    assert_broadcast(after, sentinel, "sentinel")


async def test_a_message_of_the_maximum_length_arrives_whole(
    http: httpx.AsyncClient, token: str
) -> None:
    message = "é" * 4096

    async with open_stream(http, token) as stream:
        event_id = await broadcast(http, token, message)
        block = await stream.next_event()

    assert_broadcast(block, event_id, message)


# --- filtering and isolation ---------------------------------------------------------------


async def calculate(http: httpx.AsyncClient, token: str, path: str) -> None:
    response = await http.post(path, headers=bearer(token))
    assert response.status_code == 200, response.text


async def test_types_calculation_receives_only_calculations(
    http: httpx.AsyncClient, token: str
) -> None:
    async with open_stream(http, token, params={"types": "calculation"}) as stream:
        await broadcast(http, token, "not for this stream")
        await calculate(http, token, "/calculator/add?a=1&b=2")
        await broadcast(http, token, "nor this")
        await calculate(http, token, "/calculator/multiply?a=3&b=4")
        first = await stream.next_event()
        second = await stream.next_event()

    assert_calculation(first, "add", 3, DEV_ID)
    assert_calculation(second, "multiply", 12, DEV_ID)
    assert (first.data["a"], first.data["b"]) == (1, 2)


async def test_types_broadcast_receives_only_broadcasts(
    http: httpx.AsyncClient, token: str
) -> None:
    async with open_stream(http, token, params={"types": "broadcast"}) as stream:
        await calculate(http, token, "/calculator/add?a=1&b=2")
        event_id = await broadcast(http, token, "only this")
        block = await stream.next_event()

    assert_broadcast(block, event_id, "only this")


async def test_a_client_never_sees_another_clients_calculations(
    http: httpx.AsyncClient, token: str
) -> None:
    other = await get_token(http, OTHER_ID, OTHER_SECRET)

    async with open_stream(http, token) as mine, open_stream(http, other) as theirs:
        await calculate(http, other, "/calculator/add?a=100&b=200")
        await calculate(http, token, "/calculator/add?a=1&b=1")
        shared = await broadcast(http, other, "for everyone")
        mine_seen = [await mine.next_event(), await mine.next_event()]
        theirs_seen = [await theirs.next_event(), await theirs.next_event()]

    assert_calculation(mine_seen[0], "add", 2, DEV_ID)
    assert_broadcast(mine_seen[1], shared, "for everyone", sender=OTHER_ID)
    assert_calculation(theirs_seen[0], "add", 300, OTHER_ID)
    assert_broadcast(theirs_seen[1], shared, "for everyone", sender=OTHER_ID)


async def test_replay_never_includes_another_clients_calculations(
    http: httpx.AsyncClient, token: str
) -> None:
    other = await get_token(http, OTHER_ID, OTHER_SECRET)
    start = await broadcast(http, token, "replay from here")
    await calculate(http, other, "/calculator/subtract?a=9&b=1")
    await calculate(http, token, "/calculator/subtract?a=5&b=1")

    async with open_stream(http, token, headers={"Last-Event-ID": start}) as stream:
        replayed = await stream.next_event()
        sentinel = await broadcast(http, token, "end of replay")
        after = await stream.next_event()

    assert_calculation(replayed, "subtract", 4, DEV_ID)
    assert_broadcast(after, sentinel, "end of replay")


# --- keep-alive ----------------------------------------------------------------------------


async def test_an_idle_stream_gets_ping_comments(launch: Callable[..., Server]) -> None:
    server = launch(sse_ping_interval="0.2", sse_retry_ms="1500")

    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as client:
        token = await get_token(client)
        async with open_stream(client, token, retry_ms=1500) as stream:
            pings = [await stream.next_event(timeout=2.0) for _ in range(2)]
            event_id = await broadcast(client, token, "between pings")
            block = await stream.next_event(timeout=2.0)
            while block.comments:  # a ping may come first
                block = await stream.next_event(timeout=2.0)

    assert [ping.lines for ping in pings] == [[b": ping"], [b": ping"]]
    assert [ping.fields for ping in pings] == [[], []]  # a comment, never an empty message
    assert_broadcast(block, event_id, "between pings")


# --- replay at scale and past the log ------------------------------------------------------


async def test_hundreds_of_missed_events_are_replayed_once_in_order(
    http: httpx.AsyncClient, token: str
) -> None:
    other = await get_token(http, OTHER_ID, OTHER_SECRET)
    async with open_stream(http, token) as stream:
        seen = await broadcast(http, token, "last seen")
        await drain_until(stream, seen)

    expected: list[str] = []
    for i in range(300):
        expected.append(await broadcast(http, token, f"away {i}"))
        if i % 10 == 0:  # another client's calculations must not be replayed to us
            await calculate(http, other, f"/calculator/add?a={i}&b=1")
    async with open_stream(http, token, headers={"Last-Event-ID": seen}) as stream:
        replayed = [await stream.next_event() for _ in expected]
        sentinel = await broadcast(http, token, "back")
        after = await stream.next_event()

    assert [block.id for block in replayed] == expected
    assert [block.data["message"] for block in replayed] == [f"away {i}" for i in range(300)]
    assert_broadcast(after, sentinel, "back")


async def test_resuming_from_before_a_small_log_resets_then_replays_what_is_kept(
    launch: Callable[..., Server],
) -> None:
    server = launch(event_log_size="20")
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as client:
        token = await get_token(client)
        async with open_stream(client, token) as stream:
            seen = await broadcast(client, token, "seen")
            assert (await stream.next_event()).id == seen
        sent = [await broadcast(client, token, f"while away {i}") for i in range(50)]
        async with open_stream(client, token, headers={"Last-Event-ID": seen}) as stream:
            reset = await stream.next_event()
            replayed = [await stream.next_event() for _ in range(20)]
            live = await broadcast(client, token, "live")
            after = await stream.next_event()

    assert reset.event == "reset"
    assert reset.data == RESET
    assert [block.id for block in replayed] == sent[-20:]  # the whole log, once, in order
    assert after.id == live


@pytest.mark.parametrize(
    "last_id", ["1-1\nevent: end\ndata: {}\n\n", "x\r\nid: 99\r\n\r\n", "\u2028id: 5"]
)
async def test_a_last_event_id_cannot_inject_into_the_stream(
    http: httpx.AsyncClient, token: str, last_id: str
) -> None:
    async with open_stream(http, token, params={"lastEventId": last_id}) as stream:
        reset = await stream.next_event()
        sentinel = await broadcast(http, token, "after a hostile id")
        blocks = await drain_until(stream, sentinel)

    assert reset.lines == [b"event: reset", reset.lines[1]]
    assert reset.data == RESET
    assert all(block.event in ("broadcast", "calculation") for block in blocks)
    assert all(len(block.lines) == 3 for block in blocks)
