"""The ClientStore contract, run against every adapter: memory, SQLite on a temporary file, and
PostgreSQL in a schema of its own per test (CALCMCP_TEST_DATABASE_URL, by default the local server).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import secrets
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, closing
from pathlib import Path

import asyncpg
import pytest

from src.adapters.memory.clients import MemoryClientStore
from src.adapters.postgres.clients import PostgresClientStore
from src.adapters.sqlite.clients import SqliteClientStore
from src.adapters.sqlite.keyfile import KEY_FILE, load_or_create_key
from src.application.errors import ClientExists, UnknownClient
from src.application.ports import ClientStore, RegisteredClient

pytestmark = pytest.mark.anyio

SCOPES = frozenset({"calculator", "sse"})
ALICE = RegisteredClient(client_id="alice", scopes=SCOPES)
SECRET = "alice-secret-0123456789abcdefghijklmnopqrstuvwxyz"
DB_FILE = "clients.db"
PG_URL = os.environ.get("CALCMCP_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_KEY = bytes(range(32))


def sqlite_store(data_dir: Path, clock: Callable[[], float] = time.time) -> SqliteClientStore:
    return SqliteClientStore(data_dir / DB_FILE, load_or_create_key(data_dir), clock=clock)


class Postgres:
    """Stores on one schema of their own, as separate instances of the service would open them."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.opened: list[PostgresClientStore] = []

    def __call__(
        self, *, key: bytes = PG_KEY, clock: Callable[[], float] = time.time
    ) -> PostgresClientStore:
        self.opened.append(PostgresClientStore(PG_URL, key, schema=self.schema, clock=clock))
        return self.opened[-1]

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        """Read the schema directly, past the adapter."""
        db = await asyncpg.connect(PG_URL, server_settings={"search_path": self.schema})
        try:
            return await db.fetch(query, *args)
        finally:
            await db.close()


@asynccontextmanager
async def postgres_schema() -> AsyncIterator[Postgres]:
    """A schema of its own, dropped with its stores afterwards: parallel runs never collide."""
    postgres = Postgres(f"calcmcp_test_{secrets.token_hex(8)}")
    db = await asyncpg.connect(PG_URL)
    try:
        await db.execute(f"CREATE SCHEMA {postgres.schema}")
        yield postgres
        for store in postgres.opened:
            await store.close()
        await db.execute(f"DROP SCHEMA {postgres.schema} CASCADE")
    finally:
        await db.close()


@pytest.fixture
async def postgres() -> AsyncIterator[Postgres]:
    async with postgres_schema() as postgres:
        yield postgres


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ClientStore]:
    if request.param == "memory":
        yield MemoryClientStore()
        return
    if request.param == "postgres":
        async with postgres_schema() as postgres:
            yield postgres()
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


async def test_all_orders_ids_by_code_point_whatever_the_collation(store: ClientStore) -> None:
    ids = ["b", "B", "a_", "a-", "A", "\u00e9", "z", "a"]
    for client_id in ids:
        await store.add(RegisteredClient(client_id=client_id, scopes=SCOPES), SECRET)
    assert [client.client_id for client in await store.all()] == sorted(ids)


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


async def test_an_id_with_a_nul_is_unknown(with_alice: ClientStore) -> None:
    assert await with_alice.verify("alice\x00", SECRET) is None
    assert await with_alice.get("alice\x00") is None
    with pytest.raises(UnknownClient):
        await with_alice.set_disabled("alice\x00", True)
    assert await fields(with_alice, "alice") == ("alice", SCOPES, False)


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


async def test_postgres_instances_see_each_others_changes(postgres: Postgres) -> None:
    first, second = postgres(), postgres()
    await first.add(ALICE, SECRET)
    assert await second.verify("alice", SECRET) is not None
    await second.set_disabled("alice", True)
    assert await fields(first, "alice") == ("alice", SCOPES, True)
    await first.set_secret("alice", "rotated")
    assert await second.verify("alice", SECRET) is None
    assert await second.verify("alice", "rotated") is not None
    await second.add(RegisteredClient(client_id="bob", scopes=SCOPES), "bob-secret")
    with pytest.raises(ClientExists):
        await first.add(RegisteredClient(client_id="bob", scopes=frozenset()), "other")
    await second.remove("alice")
    assert [client.client_id for client in await first.all()] == ["bob"]
    with pytest.raises(UnknownClient):
        await first.remove("alice")


async def test_postgres_creates_its_table_on_start(postgres: Postgres) -> None:
    columns = """SELECT column_name, data_type, is_nullable, collation_name
        FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'clients'
        ORDER BY ordinal_position"""
    assert await postgres.fetch(columns, postgres.schema) == []
    await postgres().start()
    assert [tuple(row) for row in await postgres.fetch(columns, postgres.schema)] == [
        ("client_id", "text", "NO", "C"),
        ("secret_hash", "bytea", "NO", None),
        ("scopes", "text", "NO", None),
        ("disabled", "boolean", "NO", None),
        ("created_at", "double precision", "NO", None),
        ("last_used_at", "double precision", "YES", None),
    ]


async def test_postgres_instances_starting_together_share_one_table(
    postgres: Postgres,
) -> None:
    stores = [postgres() for _ in range(6)]
    await asyncio.gather(*(store.start() for store in stores))
    await stores[0].add(ALICE, SECRET)
    later = postgres()
    await later.start()
    assert [await store.verify("alice", SECRET) is not None for store in [*stores, later]] == [
        True
    ] * 7


async def test_postgres_serves_concurrent_first_uses(postgres: Postgres) -> None:
    await postgres().add(ALICE, SECRET)
    store = postgres()
    clients = await asyncio.gather(*(store.verify("alice", SECRET) for _ in range(20)))
    assert all(client is not None for client in clients)


async def test_postgres_reopens_after_close(postgres: Postgres) -> None:
    store = postgres()
    await store.add(ALICE, SECRET)
    await store.close()
    await store.close()
    assert await fields(store, "alice") == ("alice", SCOPES, False)


async def test_postgres_stores_no_secret_in_clear(postgres: Postgres) -> None:
    store = postgres()
    await store.add(ALICE, SECRET)
    await store.add(RegisteredClient(client_id="bob", scopes=SCOPES), SECRET + "-bob")
    await store.set_secret("alice", SECRET + "-rotated")
    rows = await postgres.fetch("SELECT secret_hash, clients::text FROM clients")
    raw = b"".join(row[0] + row[1].encode() for row in rows)
    assert b"calculator sse" in raw  # the rows are there to be seen
    assert SECRET.encode() not in raw
    assert SECRET.encode().hex().encode() not in raw  # nor in bytea's text form
    assert {row[0] for row in rows} == {
        hmac.digest(PG_KEY, (SECRET + suffix).encode(), "sha256") for suffix in ["-rotated", "-bob"]
    }


async def test_postgres_hashes_secrets_as_sqlite_does(postgres: Postgres, tmp_path: Path) -> None:
    sqlite = SqliteClientStore(tmp_path / DB_FILE, PG_KEY)
    await sqlite.add(ALICE, SECRET)
    await postgres().add(ALICE, SECRET)
    with closing(sqlite3.connect(tmp_path / DB_FILE)) as db:
        (from_sqlite,) = db.execute("SELECT secret_hash FROM clients").fetchone()
    sqlite.close()
    [(from_postgres,)] = await postgres.fetch("SELECT secret_hash FROM clients")
    assert from_postgres == from_sqlite


async def test_postgres_secrets_need_the_same_key(postgres: Postgres) -> None:
    await postgres().add(ALICE, SECRET)
    assert await postgres(key=bytes(32)).verify("alice", SECRET) is None
    assert await postgres(key=PG_KEY).verify("alice", SECRET) is not None


async def test_postgres_writes_the_last_use_at_most_once_a_minute_across_instances(
    postgres: Postgres,
) -> None:
    now = [1000.0]
    first, second = postgres(clock=lambda: now[0]), postgres(clock=lambda: now[0])
    await first.add(ALICE, SECRET)
    used = []
    for now[0], store in [(1000.0, first), (1059.0, second), (1060.0, second), (1100.0, first)]:
        await store.verify("alice", SECRET)
        client = await first.get("alice")
        assert client is not None
        used.append(client.last_used_at)
    assert used == [1000.0, 1000.0, 1060.0, 1060.0]


@pytest.mark.parametrize("client_id", ["alice\x00", "ali\udcffce"])
async def test_postgres_refuses_an_id_its_text_cannot_hold(
    postgres: Postgres, client_id: str
) -> None:
    store = postgres()
    with pytest.raises(ValueError, match="NUL"):
        await store.add(RegisteredClient(client_id=client_id, scopes=SCOPES), SECRET)
    assert await store.verify(client_id, SECRET) is None
    assert await store.get(client_id) is None
    with pytest.raises(UnknownClient):
        await store.set_secret(client_id, SECRET)


@pytest.mark.parametrize(
    ("key", "schema"), [(bytes(31), "public"), (PG_KEY, "Public"), (PG_KEY, "x; DROP TABLE y")]
)
def test_postgres_refuses_a_short_key_or_an_odd_schema_name(key: bytes, schema: str) -> None:
    with pytest.raises(ValueError, match=r"key|schema"):
        PostgresClientStore(PG_URL, key, schema=schema)


def test_the_key_is_created_once_and_kept(tmp_path: Path) -> None:
    key = load_or_create_key(tmp_path / "data")
    assert len(key) == 32
    assert load_or_create_key(tmp_path / "data") == key


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_bytes(b"short")
    with pytest.raises(ValueError, match="32-byte key"):
        load_or_create_key(tmp_path)
