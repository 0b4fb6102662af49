"""Use cases for operators: register, list, rotate, disable and delete OAuth clients.

Run from the ``calcmcp clients`` command line by whoever controls the data directory, so there is
no scope to check: holding the data directory is the authority.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from src.application.errors import InvalidScope, UnknownClient
from src.application.ports import (
    AuditEvent,
    AuditTrail,
    ClientStore,
    Clock,
    IdSource,
    RegisteredClient,
)
from src.application.security import KNOWN_SCOPES


@dataclass(frozen=True, slots=True, kw_only=True)
class NewCredentials:
    """A client id and the secret that goes with it, shown once and never stored in clear."""

    client_id: str
    client_secret: str


class ManageClients:
    """Administers the client store.

    Rules:
        - scopes must be known scopes; ids are generated unless given;
        - secrets are generated (256 bits) and returned once; the store keeps only a keyed hash;
        - every change is audited.
    """

    def __init__(
        self, *, store: ClientStore, ids: IdSource, clock: Clock, audit: AuditTrail
    ) -> None:
        self._store = store
        self._ids = ids
        self._clock = clock
        self._audit = audit

    async def create(self, scopes: Sequence[str], client_id: str | None = None) -> NewCredentials:
        """Register a client with ``scopes``; returns its id and secret."""
        unknown = sorted(set(scopes) - KNOWN_SCOPES)
        if unknown or not scopes:
            known = ", ".join(sorted(KNOWN_SCOPES))
            raise InvalidScope(f"give one or more scopes among: {known}")
        client = RegisteredClient(
            client_id=client_id or f"client-{self._ids.new_id()}",
            scopes=frozenset(scopes),
            created_at=self._clock.now(),
        )
        secret = self._ids.new_secret()
        await self._store.add(client, secret)
        self._record("created", client.client_id)
        return NewCredentials(client_id=client.client_id, client_secret=secret)

    async def list(self) -> Sequence[RegisteredClient]:
        """Every registered client."""
        return await self._store.all()

    async def rotate_secret(self, client_id: str) -> NewCredentials:
        """Give a client a new secret; the old one stops working at once."""
        secret = self._ids.new_secret()
        await self._store.set_secret(client_id, secret)
        self._record("secret_rotated", client_id)
        return NewCredentials(client_id=client_id, client_secret=secret)

    async def set_disabled(self, client_id: str, disabled: bool) -> None:
        """Disable (or re-enable) a client; a disabled client gets no tokens."""
        await self._store.set_disabled(client_id, disabled)
        self._record("disabled" if disabled else "enabled", client_id)

    async def delete(self, client_id: str) -> None:
        """Forget a client."""
        if await self._store.get(client_id) is None:
            raise UnknownClient(f"no client {client_id!r}")
        await self._store.remove(client_id)
        self._record("deleted", client_id)

    def _record(self, outcome: str, client_id: str) -> None:
        self._audit.record(AuditEvent(action="client", outcome=outcome, client_id=client_id))
