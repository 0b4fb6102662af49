"""The registry of OAuth clients allowed to ask for tokens, and its administration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredClient:
    """An OAuth client as the registry knows it (never with its secret).

    Attributes:
        client_id: the public identifier.
        scopes: the scopes this client may be granted.
        disabled: a disabled client is refused as if unknown.
        created_at: when it was registered, UNIX seconds.
        last_used_at: when it last obtained a token, UNIX seconds (``None``: never).
    """

    client_id: str
    scopes: frozenset[str]
    disabled: bool = False
    created_at: float = 0.0
    last_used_at: float | None = None


class ClientRegistry(Protocol):
    """Looks up clients and checks their secrets."""

    async def verify(self, client_id: str, secret: str) -> RegisteredClient | None:
        """Return the client if ``secret`` is its secret, else ``None``.

        Implementations compare secrets in constant time and return ``None`` alike for an unknown
        client and a wrong secret, so a caller cannot tell which it was. A successful check
        records the client's last use.
        """
        ...

    async def get(self, client_id: str) -> RegisteredClient | None:
        """The client called ``client_id``, if any."""
        ...


class ClientStore(ClientRegistry, Protocol):
    """A registry that can also be administered (the ``calcmcp clients`` commands).

    Secrets are handed in clear and stored only as keyed hashes; they cannot be read back.
    """

    async def add(self, client: RegisteredClient, secret: str) -> None:
        """Register a new client.

        Raises:
            ClientExists: the id is taken.
        """
        ...

    async def all(self) -> Sequence[RegisteredClient]:
        """Every client, ordered by id."""
        ...

    async def set_secret(self, client_id: str, secret: str) -> None:
        """Replace a client's secret (the old one stops working at once).

        Raises:
            UnknownClient: no such client.
        """
        ...

    async def set_disabled(self, client_id: str, disabled: bool) -> None:
        """Disable or re-enable a client.

        Raises:
            UnknownClient: no such client.
        """
        ...

    async def remove(self, client_id: str) -> None:
        """Forget a client.

        Raises:
            UnknownClient: no such client.
        """
        ...
