"""The ClientStore contract, run against every adapter: memory, and SQLite on a temporary file."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from src.adapters.memory.clients import MemoryClientStore
from src.adapters.sqlite.clients import SqliteClientStore
from src.adapters.sqlite.keyfile import KEY_FILE, load_or_create_key
from src.application.errors import ClientExists, UnknownClient
from src.application.ports import ClientStore, RegisteredClient

pytestmark = pytest.mark.anyio

SCOPES = frozenset({"calculator", "sse"})
ALICE = RegisteredClient(client_id="alice", scopes=SCOPES)
SECRET = "alice-secret-0123456789abcdefghijklmnopqrstuvwxyz"
DB_FILE = "clients.db"


def sqlite_store(data_dir: Path, clock: Callable[[], float] = time.time) -> SqliteClientStore:
    return SqliteClientStore(data_dir / DB_FILE, load_or_create_key(data_dir), clock=clock)


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ClientStore]:
    if request.param == "memory":
        yield MemoryClientStore()
        return
    sqlite = sqlite_store(tmp_path / "data")
    yield sqlite
    sqlite.close()


@pytest.fixture
async def with_alice(store: ClientStore) -> ClientStore:
    await store.add(ALICE, SECRET)
    return store


def database_files(data_dir: Path) -> list[Path]:
    """The database and, in WAL mode, its -wal and -shm files."""
    return sorted(data_dir.glob(f"{DB_FILE}*"))


async def fields(store: ClientStore, client_id: str) -> tuple[str, frozenset[str], bool]:
    client = await store.get(client_id)
    assert client is not None
    return client.client_id, client.scopes, client.disabled


async def test_an_added_client_is_read_back_stamped_with_its_creation(store: ClientStore) -> None:
    before = time.time()
    await store.add(ALICE, SECRET)
    client = await store.get("alice")
    assert client is not None
    assert (client.client_id, client.scopes, client.disabled) == ("alice", SCOPES, False)
    assert before <= client.created_at <= time.time()
    assert client.last_used_at is None


async def test_times_given_to_add_are_kept(store: ClientStore) -> None:
    await store.add(RegisteredClient(client_id="old", scopes=SCOPES, created_at=1000.0), SECRET)
    client = await store.get("old")
    assert client is not None
    assert client.created_at == 1000.0


async def test_an_unknown_client_is_not_found(with_alice: ClientStore) -> None:
    assert await with_alice.get("mallory") is None


async def test_all_lists_every_client_ordered_by_id(store: ClientStore) -> None:
    for client_id in ["carol", "alice", "bob"]:
        await store.add(RegisteredClient(client_id=client_id, scopes=frozenset()), SECRET)
    clients = await store.all()
    assert [client.client_id for client in clients] == ["alice", "bob", "carol"]
    assert all(client.scopes == frozenset() for client in clients)


async def test_all_of_an_empty_store_is_empty(store: ClientStore) -> None:
    assert list(await store.all()) == []


async def test_the_right_secret_returns_the_client(with_alice: ClientStore) -> None:
    client = await with_alice.verify("alice", SECRET)
    assert client is not None
    assert (client.client_id, client.scopes, client.disabled) == ("alice", SCOPES, False)


# Near misses that a short-circuiting comparison would treat differently: one character off at
# either end, a prefix, an extension, another case, a lone surrogate.
@pytest.mark.parametrize(
    "secret",
    [
        *("", "wrong", SECRET[:-1], SECRET + " ", SECRET + "\x00", SECRET.upper()),
        *("b" + SECRET[1:], SECRET[:-1] + "Z", "\udcff"),
    ],
)
async def test_a_wrong_secret_returns_none(with_alice: ClientStore, secret: str) -> None:
    assert await with_alice.verify("alice", secret) is None


@pytest.mark.parametrize("secret", [SECRET, "", "\udcff"])
async def test_an_unknown_client_returns_none(with_alice: ClientStore, secret: str) -> None:
    assert await with_alice.verify("mallory", secret) is None


async def test_a_secret_opens_only_its_own_client(with_alice: ClientStore) -> None:
    await with_alice.add(RegisteredClient(client_id="bob", scopes=SCOPES), "bob-secret")
    assert await with_alice.verify("alice", "bob-secret") is None
    assert await with_alice.verify("bob", SECRET) is None


async def test_a_disabled_client_is_returned_disabled_for_its_secret(
    with_alice: ClientStore,
) -> None:
    await with_alice.set_disabled("alice", True)
    client = await with_alice.verify("alice", SECRET)
    assert client is not None
    assert client.disabled
    assert await with_alice.verify("alice", "wrong") is None


async def test_a_client_can_be_disabled_and_enabled_again(with_alice: ClientStore) -> None:
    await with_alice.set_disabled("alice", True)
    assert await fields(with_alice, "alice") == ("alice", SCOPES, True)
    await with_alice.set_disabled("alice", False)
    assert await fields(with_alice, "alice") == ("alice", SCOPES, False)


async def test_a_new_secret_replaces_the_old_at_once(with_alice: ClientStore) -> None:
    await with_alice.set_secret("alice", "rotated")
    assert await with_alice.verify("alice", SECRET) is None
    assert await with_alice.verify("alice", "rotated") is not None


async def test_a_removed_client_is_gone(with_alice: ClientStore) -> None:
    await with_alice.remove("alice")
    assert await with_alice.get("alice") is None
    assert await with_alice.verify("alice", SECRET) is None
    assert list(await with_alice.all()) == []
    await with_alice.add(ALICE, "again")
    assert await with_alice.verify("alice", "again") is not None


async def test_adding_a_taken_id_is_refused_and_changes_nothing(with_alice: ClientStore) -> None:
    with pytest.raises(ClientExists):
        await with_alice.add(RegisteredClient(client_id="alice", scopes=frozenset()), "other")
    assert await with_alice.verify("alice", "other") is None
    assert await fields(with_alice, "alice") == ("alice", SCOPES, False)


@pytest.mark.parametrize("command", ["set_secret", "set_disabled", "remove"])
async def test_commands_on_an_unknown_client_are_refused(
    with_alice: ClientStore, command: str
) -> None:
    calls = {
        "set_secret": lambda: with_alice.set_secret("mallory", "x"),
        "set_disabled": lambda: with_alice.set_disabled("mallory", True),
        "remove": lambda: with_alice.remove("mallory"),
    }
    with pytest.raises(UnknownClient):
        await calls[command]()
    assert [client.client_id for client in await with_alice.all()] == ["alice"]


async def test_a_successful_verify_records_the_last_use(with_alice: ClientStore) -> None:
    before = time.time()
    verified = await with_alice.verify("alice", SECRET)
    stored = await with_alice.get("alice")
    assert verified is not None
    assert stored is not None
    assert verified.last_used_at is not None
    assert before <= verified.last_used_at <= time.time()
    assert stored.last_used_at == verified.last_used_at


async def test_a_failed_verify_records_no_use(with_alice: ClientStore) -> None:
    await with_alice.verify("alice", "wrong")
    client = await with_alice.get("alice")
    assert client is not None
    assert client.last_used_at is None


# What only one adapter can show.


async def test_memory_holds_no_secret_in_clear() -> None:
    store = MemoryClientStore()
    await store.add(ALICE, SECRET)
    await store.set_secret("alice", SECRET + "-rotated")
    assert SECRET not in repr(vars(store))


async def test_sqlite_stores_no_secret_in_clear(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    await store.add(ALICE, SECRET)
    await store.set_secret("alice", SECRET + "-rotated")
    # WAL: fresh writes sit in the -wal file until a checkpoint, so read every file.
    raw = b"".join(path.read_bytes() for path in database_files(tmp_path))
    store.close()
    assert b"calculator sse" in raw  # the rows are there to be seen
    assert SECRET.encode() not in raw


async def test_sqlite_files_are_readable_by_the_owner_only(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path)
    await store.add(ALICE, SECRET)
    paths = [tmp_path / KEY_FILE, *database_files(tmp_path)]
    modes = {path.name: stat.S_IMODE(os.stat(path).st_mode) for path in paths}
    store.close()
    assert f"{DB_FILE}-wal" in modes
    assert modes == dict.fromkeys(modes, 0o600)


async def test_sqlite_clients_outlive_the_store(tmp_path: Path) -> None:
    first = sqlite_store(tmp_path)
    await first.add(ALICE, SECRET)
    await first.set_disabled("alice", True)
    first.close()
    second = sqlite_store(tmp_path)
    client = await second.verify("alice", SECRET)
    second.close()
    assert client is not None
    assert (client.client_id, client.scopes, client.disabled) == ("alice", SCOPES, True)


async def test_sqlite_secrets_need_the_same_key(tmp_path: Path) -> None:
    first = sqlite_store(tmp_path)
    await first.add(ALICE, SECRET)
    first.close()
    other_key = SqliteClientStore(tmp_path / DB_FILE, bytes(32))
    assert await other_key.verify("alice", SECRET) is None
    other_key.close()


async def test_sqlite_writes_the_last_use_at_most_once_a_minute(tmp_path: Path) -> None:
    now = [1000.0]
    store = sqlite_store(tmp_path, clock=lambda: now[0])
    await store.add(ALICE, SECRET)
    used = []
    for now[0] in (1000.0, 1059.0, 1060.0):
        await store.verify("alice", SECRET)
        client = await store.get("alice")
        assert client is not None
        used.append(client.last_used_at)
    store.close()
    assert used == [1000.0, 1000.0, 1060.0]


def test_the_key_is_created_once_and_kept(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "data")
    assert len(key) == 32
    assert load_or_create_key(tmp_path / "data") == key


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_bytes(b"short")
    with pytest.raises(ValueError, match="32-byte key"):
        load_or_create_key(tmp_path)
