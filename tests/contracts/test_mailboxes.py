"""The SessionMailboxes contract, run against every adapter: in memory, and Redis pub/sub."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import pytest

from src.adapters.memory.mailboxes import MemorySessionMailboxes
from src.adapters.redis import RedisSessionMailboxes
from src.application.ports import Mailbox, SessionMailboxes, SubscriptionClosed
from tests.contracts.redis_support import Keyspace, keyspace

pytestmark = pytest.mark.anyio


@pytest.fixture
async def space() -> AsyncIterator[Keyspace]:
    async with keyspace() as opened:
        yield opened


@pytest.fixture(params=["memory", "redis"])
async def mailboxes(
    request: pytest.FixtureRequest, space: Keyspace
) -> AsyncIterator[SessionMailboxes]:
    if request.param == "memory":
        yield MemorySessionMailboxes()
        return
    redis = RedisSessionMailboxes(space.client, prefix=space.prefix)
    yield redis
    await redis.aclose()


async def receive(box: Mailbox, count: int) -> list[bytes]:
    got: list[bytes] = []
    with anyio.fail_after(5):
        while len(got) < count:
            got += await box.receive(5.0)
    return got


async def closed(box: Mailbox) -> str:
    with anyio.fail_after(5), pytest.raises(SubscriptionClosed) as ended:  # noqa: PT012
        while True:
            await box.receive(5.0)
    return ended.value.reason


async def eventually_undelivered(mailboxes: SessionMailboxes, session_id: str) -> None:
    """Sending fails once no stream holds the session (Redis unsubscribes in the background)."""
    deadline = time.monotonic() + 5
    while await mailboxes.send(session_id, b"late"):
        assert time.monotonic() < deadline, "the session is still held"
        await anyio.sleep(0.02)


async def test_a_message_for_a_session_nobody_holds_is_not_delivered(
    mailboxes: SessionMailboxes,
) -> None:
    assert not await mailboxes.send("s-1", b"hello")


async def test_messages_reach_the_open_mailbox_in_order(mailboxes: SessionMailboxes) -> None:
    box = await mailboxes.open("s-1")
    other = await mailboxes.open("s-2")
    payloads = [b"one", b"two \x00\xff", b""]
    for payload in payloads:
        assert await mailboxes.send("s-1", payload)
    assert await receive(box, 3) == payloads
    assert await other.receive(0.1) == []


async def test_receive_returns_nothing_after_its_timeout(mailboxes: SessionMailboxes) -> None:
    box = await mailboxes.open("s-1")
    started = time.monotonic()
    assert await box.receive(0.1) == []
    assert 0.09 <= time.monotonic() - started < 2.0


async def test_a_closed_mailbox_ends_and_receives_nothing_more(
    mailboxes: SessionMailboxes,
) -> None:
    box = await mailboxes.open("s-1")
    box.close()
    box.close()  # idempotent
    with pytest.raises(SubscriptionClosed):
        await box.receive(1.0)
    await eventually_undelivered(mailboxes, "s-1")


async def test_opening_a_session_again_replaces_its_mailbox(mailboxes: SessionMailboxes) -> None:
    first = await mailboxes.open("s-1")
    second = await mailboxes.open("s-1")
    assert await mailboxes.send("s-1", b"hello")
    assert await receive(second, 1) == [b"hello"]
    await closed(first)
    second.close()
    await eventually_undelivered(mailboxes, "s-1")


async def test_close_all_ends_every_mailbox(mailboxes: SessionMailboxes) -> None:
    boxes = [await mailboxes.open(f"s-{n}") for n in range(3)]
    mailboxes.close_all()
    for box in boxes:
        await closed(box)


async def test_a_mailbox_too_far_behind_is_cut_off(mailboxes: SessionMailboxes) -> None:
    box = await mailboxes.open("s-1")
    for n in range(300):
        await mailboxes.send("s-1", b"%d" % n)
    await closed(box)


# What only Redis can show: the POST and the stream in different processes.


async def test_a_message_sent_from_another_instance_reaches_the_stream(space: Keyspace) -> None:
    holder = RedisSessionMailboxes(space.client, prefix=space.prefix)
    sender = RedisSessionMailboxes(space.client, prefix=space.prefix)
    box = await holder.open("s-1")
    assert await sender.send("s-1", b"hello")
    assert await receive(box, 1) == [b"hello"]
    box.close()
    await eventually_undelivered(sender, "s-1")
    await holder.aclose()
    await sender.aclose()


async def test_opening_the_session_in_another_instance_closes_the_first(space: Keyspace) -> None:
    here = RedisSessionMailboxes(space.client, prefix=space.prefix)
    there = RedisSessionMailboxes(space.client, prefix=space.prefix)
    moved_from = await here.open("s-1")
    moved_to = await there.open("s-1")
    assert await closed(moved_from) == "closed"
    await here.send("s-1", b"hello")
    assert await receive(moved_to, 1) == [b"hello"]
    await here.aclose()
    await there.aclose()
