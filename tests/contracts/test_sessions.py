"""The SessionStore contract, run against every adapter: in memory, and on Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import anyio
import pytest

from src.adapters.memory.sessions import MemorySessionStore
from src.adapters.redis import RedisSessionStore
from src.application.ports import Session, SessionStore, StreamMessage
from tests.contracts.redis_support import Keyspace, keyspace

pytestmark = pytest.mark.anyio
MakeStore = Callable[..., SessionStore]

SESSION = Session(
    session_id="s-1",
    client_id="alice",
    protocol_version="2025-06-18",
    created_at=1_700_000_000.123456,
    log_level="debug",
    subscriptions=frozenset({"calc://events", "calc://other/ünïcode"}),
)


@pytest.fixture
async def space() -> AsyncIterator[Keyspace]:
    async with keyspace() as opened:
        yield opened


@pytest.fixture(params=["memory", "redis"])
def make(request: pytest.FixtureRequest, space: Keyspace) -> MakeStore:
    if request.param == "memory":
        return MemorySessionStore
    return lambda **options: RedisSessionStore(space.client, prefix=space.prefix, **options)


@pytest.fixture
async def store(make: MakeStore) -> SessionStore:
    created = make()
    await created.put(SESSION)
    return created


async def test_a_session_is_read_back_as_it_was_put(store: SessionStore) -> None:
    assert await store.get("s-1") == SESSION
    assert await store.get("s-2") is None


async def test_a_session_with_defaults_is_read_back_as_it_was_put(store: SessionStore) -> None:
    plain = Session(session_id="s-2", client_id="bob", protocol_version="v", created_at=0.0)
    await store.put(plain)
    assert await store.get("s-2") == plain


async def test_putting_again_updates_the_session_and_keeps_its_streams(
    store: SessionStore,
) -> None:
    first = await store.append("s-1", "main", b"one")
    await store.append("s-1", "main", b"two")
    updated = Session(
        session_id="s-1", client_id="alice", protocol_version="2025-06-18", created_at=1.0
    )
    await store.put(updated)
    assert await store.get("s-1") == updated
    _, rest = await store.replay("s-1", first)
    assert [message.payload for message in rest] == [b"two"]


async def test_a_deleted_session_is_gone_with_its_streams(store: SessionStore) -> None:
    first = await store.append("s-1", "main", b"one")
    await store.append("s-1", "main", b"two")
    assert await store.delete("s-1")
    assert await store.get("s-1") is None
    assert not await store.delete("s-1")
    await store.put(SESSION)  # the same id again starts afresh
    assert await store.replay("s-1", first) == ("main", [])


async def test_messages_get_ids_naming_their_stream(store: SessionStore) -> None:
    ids = [await store.append("s-1", stream, b"x") for stream in ("a", "b", "a", "a/b")]
    assert [event_id.rpartition("/")[0] for event_id in ids] == ["a", "b", "a", "a/b"]
    assert len(set(ids)) == 4


async def test_replay_gives_the_rest_of_the_stream_the_id_belongs_to(store: SessionStore) -> None:
    a1 = await store.append("s-1", "a", b"a1")
    await store.append("s-1", "b", b"b1")
    a2 = await store.append("s-1", "a", b"a2\x00\xff binary")
    a3 = await store.append("s-1", "a", b"")
    stream, rest = await store.replay("s-1", a1)
    assert stream == "a"
    assert list(rest) == [StreamMessage(a2, b"a2\x00\xff binary"), StreamMessage(a3, b"")]
    assert await store.replay("s-1", a3) == ("a", [])


@pytest.mark.parametrize("last", ["a/999999", "a/x", "nothing", "", "c/1"])
async def test_replay_after_an_unknown_id_gives_nothing(store: SessionStore, last: str) -> None:
    await store.append("s-1", "a", b"a1")
    stream, rest = await store.replay("s-1", last)
    assert stream == last.rpartition("/")[0]
    assert list(rest) == []


async def test_replay_of_another_session_gives_nothing(store: SessionStore) -> None:
    a1 = await store.append("s-1", "a", b"a1")
    await store.append("s-1", "a", b"a2")
    assert await store.replay("s-2", a1) == ("a", [])


async def test_a_stream_keeps_only_its_newest_messages(make: MakeStore) -> None:
    store = make(history=3)
    await store.put(SESSION)
    ids = [await store.append("s-1", "a", bytes([n])) for n in range(5)]
    assert await store.replay("s-1", ids[0]) == ("a", [])  # no longer kept
    _, rest = await store.replay("s-1", ids[2])
    assert [message.payload for message in rest] == [b"\x03", b"\x04"]


async def test_messages_of_an_unknown_session_are_numbered_but_not_kept(
    store: SessionStore,
) -> None:
    first = await store.append("nobody", "a", b"1")
    await store.append("nobody", "a", b"2")
    assert first.startswith("a/")
    assert await store.replay("nobody", first) == ("a", [])


# What only Redis can show: instances sharing sessions, and sessions expiring unused.


async def test_any_instance_serves_any_session(space: Keyspace) -> None:
    here = RedisSessionStore(space.client, prefix=space.prefix)
    there = RedisSessionStore(space.client, prefix=space.prefix)
    await here.put(SESSION)
    first = await here.append("s-1", "a", b"1")
    second = await there.append("s-1", "a", b"2")
    assert await there.get("s-1") == SESSION
    assert await here.replay("s-1", first) == ("a", [StreamMessage(second, b"2")])


async def test_a_session_in_use_is_kept_and_an_unused_one_expires(space: Keyspace) -> None:
    store = RedisSessionStore(space.client, prefix=space.prefix, ttl=0.4)
    await store.put(SESSION)
    await store.put(Session(session_id="idle", client_id="b", protocol_version="v", created_at=0))
    for _ in range(4):
        await anyio.sleep(0.2)
        assert await store.get("s-1") == SESSION  # each use pushes the expiry back
    assert await store.get("idle") is None
    assert [key async for key in space.client.scan_iter(match=f"{space.prefix}*idle*")] == []
