"""Clients in an SQLite file: keyed hashes of their secrets, scopes, times and a disabled flag."""

from __future__ import annotations

import dataclasses
import hmac
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from src.application.errors import ClientExists, UnknownClient
from src.application.ports import ClientStore, RegisteredClient

SCHEMA = """CREATE TABLE IF NOT EXISTS clients (
    client_id TEXT PRIMARY KEY, secret_hash BLOB NOT NULL, scopes TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, last_used_at REAL)"""
# Literal statements, never formatted: values only ever go in as parameters.
SELECT = "SELECT secret_hash, client_id, scopes, disabled, created_at, last_used_at FROM clients"
SELECT_ONE = SELECT + " WHERE client_id = ?"
SELECT_ALL = SELECT + " ORDER BY client_id"
INSERT = "INSERT INTO clients VALUES (?, ?, ?, ?, ?, ?)"
SET_SECRET = "UPDATE clients SET secret_hash = ? WHERE client_id = ?"
SET_DISABLED = "UPDATE clients SET disabled = ? WHERE client_id = ?"
SET_LAST_USED = "UPDATE clients SET last_used_at = ? WHERE client_id = ?"
DELETE = "DELETE FROM clients WHERE client_id = ?"
LAST_USE_INTERVAL = 60.0
"""Seconds: a client's last use is written at most this often, not once per token request."""
BUSY_TIMEOUT_MS = 2000
"""How long a write waits for another process's; every write here is one short statement."""


class SqliteClientStore(ClientStore):
    """Clients in an SQLite database (WAL journal, file mode 0600), created on first use.

    Secrets are stored as HMAC-SHA256 under a server-side key (see ``keyfile``): they are
    generated with 256 bits, so a slow password hash would add cost and no safety, and the key
    means a copy of the database alone cannot test a guess. Comparisons are constant-time.

    sqlite3 runs directly on the event-loop thread: these are short queries on a local file, and
    a thread hop costs more than the query (measured: ``verify`` 16 µs, an empty
    ``asyncio.to_thread`` 130 µs). ``check_same_thread=False`` because the store may still be
    reached from another thread (a test client's portal, a CLI); a lock serializes the connection.

    Args:
        path: the database file (its directory is created if missing).
        key: the key secrets are hashed with; the same key must be given on every start.
        clock: the current time, UNIX seconds (for creation and last-use times).
    """

    def __init__(self, path: Path, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._key = key
        self._clock = clock
        # Compared against when the client is unknown, so that path costs what a wrong secret
        # costs; random, so no secret can match it.
        self._absent = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    async def verify(self, client_id: str, secret: str) -> RegisteredClient | None:
        """Return the client (even a disabled one) when ``secret`` is its secret, else ``None``."""
        if not _storable(client_id):
            return None
        with self._db() as db:
            row = db.execute(SELECT_ONE, (client_id,)).fetchone()
            expected = row[0] if row else self._absent
            if not hmac.compare_digest(expected, self._hash(secret)) or row is None:
                return None
            client, now = _client(row), self._clock()
            last = client.last_used_at
            if last is None or now - last >= LAST_USE_INTERVAL:
                db.execute(SET_LAST_USED, (now, client_id))
                client = dataclasses.replace(client, last_used_at=now)
        return client

    async def add(self, client: RegisteredClient, secret: str) -> None:
        """Register ``client``; a zero ``created_at`` is stamped with the current time."""
        # Space-separated, as OAuth writes scopes: a scope token never contains a space.
        scopes = " ".join(sorted(client.scopes))
        created_at = client.created_at or self._clock()
        digest, last_used_at = self._hash(secret), client.last_used_at
        row = (client.client_id, digest, scopes, client.disabled, created_at, last_used_at)
        with self._db() as db:
            try:
                db.execute(INSERT, row)
            except sqlite3.IntegrityError:
                raise ClientExists(f"client '{client.client_id}' already exists") from None

    async def get(self, client_id: str) -> RegisteredClient | None:
        """The client called ``client_id``, if any."""
        if not _storable(client_id):
            return None
        with self._db() as db:
            row = db.execute(SELECT_ONE, (client_id,)).fetchone()
        return _client(row) if row else None

    async def all(self) -> Sequence[RegisteredClient]:
        """Every client, ordered by id."""
        with self._db() as db:
            rows = db.execute(SELECT_ALL).fetchall()
        return [_client(row) for row in rows]

    async def set_secret(self, client_id: str, secret: str) -> None:
        """Replace a client's secret."""
        self._change(client_id, SET_SECRET, (self._hash(secret), client_id))

    async def set_disabled(self, client_id: str, disabled: bool) -> None:
        """Disable or re-enable a client."""
        self._change(client_id, SET_DISABLED, (disabled, client_id))

    async def remove(self, client_id: str) -> None:
        """Forget a client."""
        self._change(client_id, DELETE, (client_id,))

    def close(self) -> None:
        """Close the connection (the next use opens it again)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _change(self, client_id: str, sql: str, parameters: tuple[Any, ...]) -> None:
        with self._db() as db:
            if db.execute(sql, parameters).rowcount == 0:
                raise UnknownClient(f"no client '{client_id}'")

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._connection is None:
                self._connection = self._open()
            yield self._connection

    def _open(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # Created here, not by sqlite3, to get mode 0600 (it holds secret hashes); SQLite gives
        # the -wal and -shm files the database file's mode.
        os.close(os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600))
        # Autocommit: every write is one statement, so a transaction of its own is enough.
        db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # WAL: readers in other processes (workers, the CLI) never block the writer, or wait.
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(SCHEMA)
        return db

    def _hash(self, secret: str) -> bytes:
        # surrogatepass: a secret decoded from bytes that were not UTF-8 still hashes (and fails).
        data = secret.encode("utf-8", "surrogatepass")
        return hmac.digest(self._key, data, "sha256")  # the one-shot C path


def _client(row: Sequence[Any]) -> RegisteredClient:
    _, client_id, scopes, disabled, created_at, last_used_at = row
    return RegisteredClient(
        client_id=client_id,
        scopes=frozenset(scopes.split()),
        disabled=bool(disabled),
        created_at=created_at,
        last_used_at=last_used_at,
    )


def _storable(client_id: str) -> bool:
    """Whether SQLite can hold the id (text off the wire may carry lone surrogates)."""
    try:
        client_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
