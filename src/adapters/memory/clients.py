"""A client registry held in memory, seeded from configuration."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from src.application.ports import ClientRegistry, RegisteredClient


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientSeed:
    """A client to register at start-up: its id, secret and allowed scopes."""

    client_id: str
    secret: str
    scopes: frozenset[str]


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


# A digest to compare against when the client is unknown, so both paths cost the same.
_NO_CLIENT = _digest("\x00no client\x00")


class MemoryClientRegistry(ClientRegistry):
    """Clients kept in a dict; secrets are stored as SHA-256 digests, compared in constant time."""

    def __init__(self, seeds: Iterable[ClientSeed] = ()) -> None:
        self._clients: dict[str, tuple[bytes, RegisteredClient]] = {}
        for seed in seeds:
            self.register(seed)

    def register(self, seed: ClientSeed) -> None:
        """Add or replace a client."""
        client = RegisteredClient(client_id=seed.client_id, scopes=seed.scopes)
        self._clients[seed.client_id] = (_digest(seed.secret), client)

    async def verify(self, client_id: str, secret: str) -> RegisteredClient | None:
        """Return the client when ``secret`` matches, else ``None``."""
        expected, client = self._clients.get(client_id, (_NO_CLIENT, None))
        matches = hmac.compare_digest(expected, _digest(secret))
        return client if matches else None
