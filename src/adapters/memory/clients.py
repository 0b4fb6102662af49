"""A client store held in memory: for tests, and for clients seeded from configuration."""

from __future__ import annotations

import dataclasses
import hmac
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from src.application.errors import ClientExists, UnknownClient
from src.application.ports import ClientRegistry, ClientStore, RegisteredClient


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSeed:
    """A client to register at start-up: its id, secret and allowed scopes."""

    client_id: str
    secret: str
    scopes: frozenset[str]


class MemoryClientStore(ClientStore):
    """Clients kept in a dict, with keyed hashes of their secrets compared in constant time.

    The hash key is random per instance: nothing outlives the process, so nothing needs it
    again. Every method runs without an ``await``, so each is atomic on the event loop.

    Args:
        seeds: clients to register at once (see :meth:`register`).
        clock: the current time, UNIX seconds (for creation and last-use times).
    """

    def __init__(
        self, seeds: Iterable[ClientSeed] = (), *, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = secrets.token_bytes(32)
        # Compared against when the client is unknown, so that path costs what a wrong secret
        # costs; random, so no secret can match it.
        self._absent = secrets.token_bytes(32)
        self._clock = clock
        self._clients: dict[str, tuple[bytes, RegisteredClient]] = {}
        for seed in seeds:
            self.register(seed)

    def register(self, seed: ClientSeed) -> None:
        """Add a client, or replace one with the same id (configuration is the authority)."""
        client = RegisteredClient(
            client_id=seed.client_id, scopes=seed.scopes, created_at=self._clock()
        )
        self._clients[seed.client_id] = (self._hash(seed.secret), client)

    async def verify(self, client_id: str, secret: str) -> RegisteredClient | None:
        """Return the client (even a disabled one) when ``secret`` is its secret, else ``None``."""
        expected, client = self._clients.get(client_id, (self._absent, None))
        if not hmac.compare_digest(expected, self._hash(secret)) or client is None:
            return None
        # Recording every use is free here, unlike in a database.
        client = dataclasses.replace(client, last_used_at=self._clock())
        self._clients[client_id] = (expected, client)
        return client

    async def add(self, client: RegisteredClient, secret: str) -> None:
        """Register ``client``; a zero ``created_at`` is stamped with the current time."""
        if client.client_id in self._clients:
            raise ClientExists(f"client '{client.client_id}' already exists")
        if not client.created_at:
            client = dataclasses.replace(client, created_at=self._clock())
        self._clients[client.client_id] = (self._hash(secret), client)

    async def get(self, client_id: str) -> RegisteredClient | None:
        """The client called ``client_id``, if any."""
        entry = self._clients.get(client_id)
        return entry[1] if entry else None

    async def all(self) -> Sequence[RegisteredClient]:
        """Every client, ordered by id."""
        return [self._clients[client_id][1] for client_id in sorted(self._clients)]

    async def set_secret(self, client_id: str, secret: str) -> None:
        """Replace a client's secret."""
        _, client = self._entry(client_id)
        self._clients[client_id] = (self._hash(secret), client)

    async def set_disabled(self, client_id: str, disabled: bool) -> None:
        """Disable or re-enable a client."""
        digest, client = self._entry(client_id)
        self._clients[client_id] = (digest, dataclasses.replace(client, disabled=disabled))

    async def remove(self, client_id: str) -> None:
        """Forget a client."""
        self._entry(client_id)
        del self._clients[client_id]

    def _entry(self, client_id: str) -> tuple[bytes, RegisteredClient]:
        try:
            return self._clients[client_id]
        except KeyError:
            raise UnknownClient(f"no client '{client_id}'") from None

    def _hash(self, secret: str) -> bytes:
        # surrogatepass: a secret decoded from bytes that were not UTF-8 still hashes (and fails).
        data = secret.encode("utf-8", "surrogatepass")
        return hmac.digest(self._key, data, "sha256")  # the one-shot C path


MemoryClientRegistry = MemoryClientStore
"""The former name, still imported by the composition root."""


class LayeredClientRegistry(ClientRegistry):
    """Asks each registry in turn: clients from configuration first, then the database."""

    def __init__(self, *registries: ClientRegistry) -> None:
        self._registries = registries

    async def verify(self, client_id: str, secret: str) -> RegisteredClient | None:
        """The first registry's answer that knows the client and its secret."""
        for registry in self._registries:
            client = await registry.verify(client_id, secret)
            if client is not None:
                return client
        return None

    async def get(self, client_id: str) -> RegisteredClient | None:
        """The client from the first registry that has one by that id."""
        for registry in self._registries:
            client = await registry.get(client_id)
            if client is not None:
                return client
        return None
