"""Clients in PostgreSQL, shared by every instance: keyed hashes of their secrets, scopes, times."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import re
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from src.application.errors import ClientExists, UnknownClient
from src.application.ports import ClientStore, RegisteredClient

# Literal statements, never formatted: values go in as parameters, and the schema as each
# connection's search_path. COLLATE "C": ids sort by code point, as in the other stores, whatever
# the database's default collation.
TABLE = """CREATE TABLE IF NOT EXISTS clients (
    client_id text COLLATE "C" PRIMARY KEY, secret_hash bytea NOT NULL, scopes text NOT NULL,
    disabled boolean NOT NULL DEFAULT false, created_at double precision NOT NULL,
    last_used_at double precision)"""
# Instances starting together on an empty schema would race inside CREATE TABLE IF NOT EXISTS
# (the loser fails on a catalog unique index); a lock held until commit makes them take turns.
LOCK = "SELECT pg_advisory_xact_lock(hashtext('calcmcp.clients.' || current_schema()))"
SELECT = "SELECT secret_hash, client_id, scopes, disabled, created_at, last_used_at FROM clients"
SELECT_ONE = SELECT + " WHERE client_id = $1"
SELECT_ALL = SELECT + " ORDER BY client_id"
INSERT = """INSERT INTO clients (client_id, secret_hash, scopes, disabled, created_at, last_used_at)
    VALUES ($1, $2, $3, $4, $5, $6)"""
SET_SECRET = "UPDATE clients SET secret_hash = $2 WHERE client_id = $1 RETURNING true"
SET_DISABLED = "UPDATE clients SET disabled = $2 WHERE client_id = $1 RETURNING true"
DELETE = "DELETE FROM clients WHERE client_id = $1 RETURNING true"
# The interval is checked again on the row itself: when instances verify the same client at once,
# one write wins and the others change nothing.
SET_LAST_USED = """UPDATE clients SET last_used_at = $2
    WHERE client_id = $1 AND (last_used_at IS NULL OR $2 - last_used_at >= $3) RETURNING true"""
LAST_USE_INTERVAL = 60.0
"""Seconds: a client's last use is written at most this often, not once per token request."""
CONNECT_TIMEOUT = 10.0
COMMAND_TIMEOUT = 10.0
"""Seconds: a database that stops answering fails a request instead of holding it forever."""
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
MIN_KEY_BYTES = 32


class PostgresClientStore(ClientStore):
    """Clients in a PostgreSQL table that every instance of the service shares.

    Secrets are stored as HMAC-SHA256 under a server-side key, as the SQLite store does (same
    bytes for the same key), and compared in constant time. The connection pool is opened, and the
    table created if missing, by :meth:`start` or else on first use; :meth:`close` closes it.
    The pool belongs to the event loop that opened it.

    Args:
        url: a libpq connection URL, e.g. ``postgresql://calcmcp@db:5432/calcmcp``.
        key: the key secrets are hashed with, at least 32 random bytes. Every instance must be
            given the same key, so it comes from configuration (e.g.
            ``CALCMCP_CLIENT_SECRET_KEY``): a key file per instance would match on none of the
            others. Keep it apart from the database: a copy of the table alone cannot test a guess.
        schema: the existing PostgreSQL schema that holds the ``clients`` table.
        pool_size: the most connections this instance opens.
        clock: the current time, UNIX seconds (for creation and last-use times).

    Raises:
        ValueError: the key is too short, or the schema is not a plain lower-case identifier.
    """

    def __init__(
        self,
        url: str,
        key: bytes,
        *,
        schema: str = "public",
        pool_size: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the client secret key must be at least {MIN_KEY_BYTES} bytes")
        if not SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"not a plain PostgreSQL schema name: {schema!r}")
        self._url, self._key, self._schema = url, key, schema
        self._pool_size, self._clock = pool_size, clock
        # Compared against when the client is unknown, so that path costs what a wrong secret
        # costs; random, so no secret can match it.
        self._absent = secrets.token_bytes(32)
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def start(self) -> None:
        """Open the pool and create the table if it is missing (else the first use does)."""
        await self._connected()

    async def close(self) -> None:
        """Close the pool (the next use opens it again)."""
        async with self._opening:
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def ping(self) -> None:
        """Raise unless the database answers ``SELECT 1`` (a readiness check)."""
        pool = await self._connected()
        await pool.fetchval("SELECT 1")

    async def verify(self, client_id: str, secret: str) -> RegisteredClient | None:
        """Return the client (even a disabled one) when ``secret`` is its secret, else ``None``."""
        row = await self._fetch_one(client_id)
        expected = row[0] if row else self._absent
        if not hmac.compare_digest(expected, self._hash(secret)) or row is None:
            return None
        client, now = _client(row), self._clock()
        last = client.last_used_at
        if last is None or now - last >= LAST_USE_INTERVAL:
            pool = await self._connected()
            if await pool.fetchval(SET_LAST_USED, client_id, now, LAST_USE_INTERVAL):
                client = dataclasses.replace(client, last_used_at=now)
        return client

    async def add(self, client: RegisteredClient, secret: str) -> None:
        """Register ``client``; a zero ``created_at`` is stamped with the current time.

        Raises:
            ClientExists: the id is taken.
            ValueError: PostgreSQL text cannot hold the id (a NUL or a lone surrogate).
        """
        if not _storable(client.client_id):
            raise ValueError("a client id is UTF-8 text without NUL characters")
        # Space-separated, as OAuth writes scopes: a scope token never contains a space.
        scopes = " ".join(sorted(client.scopes))
        created_at = client.created_at or self._clock()
        row = (client.client_id, self._hash(secret), scopes, client.disabled, created_at)
        pool = await self._connected()
        try:
            await pool.execute(INSERT, *row, client.last_used_at)
        except asyncpg.UniqueViolationError:
            raise ClientExists(f"client '{client.client_id}' already exists") from None

    async def get(self, client_id: str) -> RegisteredClient | None:
        """The client called ``client_id``, if any."""
        row = await self._fetch_one(client_id)
        return _client(row) if row else None

    async def all(self) -> Sequence[RegisteredClient]:
        """Every client, ordered by id."""
        pool = await self._connected()
        return [_client(row) for row in await pool.fetch(SELECT_ALL)]

    async def set_secret(self, client_id: str, secret: str) -> None:
        """Replace a client's secret."""
        await self._change(client_id, SET_SECRET, self._hash(secret))

    async def set_disabled(self, client_id: str, disabled: bool) -> None:
        """Disable or re-enable a client."""
        await self._change(client_id, SET_DISABLED, disabled)

    async def remove(self, client_id: str) -> None:
        """Forget a client."""
        await self._change(client_id, DELETE)

    async def _fetch_one(self, client_id: str) -> asyncpg.Record | None:
        if not _storable(client_id):
            return None
        pool = await self._connected()
        return await pool.fetchrow(SELECT_ONE, client_id)

    async def _change(self, client_id: str, sql: str, *values: Any) -> None:
        if _storable(client_id):
            pool = await self._connected()
            if await pool.fetchval(sql, client_id, *values):
                return
        raise UnknownClient(f"no client '{client_id}'")

    async def _connected(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:  # concurrent first uses open one pool, not several
            if self._pool is None:
                self._pool = await self._open()
            return self._pool

    async def _open(self) -> asyncpg.Pool:
        pool = await asyncpg.create_pool(
            self._url,
            min_size=1,
            max_size=self._pool_size,
            timeout=CONNECT_TIMEOUT,
            command_timeout=COMMAND_TIMEOUT,
            # A startup setting, so the pool's RESET ALL on release keeps it.
            server_settings={"search_path": self._schema, "application_name": "calcmcp"},
        )
        try:
            async with pool.acquire() as db, db.transaction():
                await db.execute(LOCK)
                await db.execute(TABLE)
        except BaseException:
            pool.terminate()
            raise
        return pool

    def _hash(self, secret: str) -> bytes:
        # surrogatepass: a secret decoded from bytes that were not UTF-8 still hashes (and fails).
        data = secret.encode("utf-8", "surrogatepass")
        return hmac.digest(self._key, data, "sha256")  # the one-shot C path


def _storable(client_id: str) -> bool:
    """Whether PostgreSQL text can hold ``client_id``; no other id can have been registered."""
    try:
        client_id.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return "\x00" not in client_id


def _client(row: asyncpg.Record) -> RegisteredClient:
    _, client_id, scopes, disabled, created_at, last_used_at = row
    return RegisteredClient(
        client_id=client_id,
        scopes=frozenset(scopes.split()),
        disabled=disabled,
        created_at=created_at,
        last_used_at=last_used_at,
    )
