"""The registry of OAuth clients allowed to ask for tokens."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredClient:
    """An OAuth client as the registry knows it (never with its secret).

    Attributes:
        client_id: the public identifier.
        scopes: the scopes this client may be granted.
        disabled: a disabled client is refused as if unknown.
    """

    client_id: str
    scopes: frozenset[str]
    disabled: bool = False


class ClientRegistry(Protocol):
    """Looks up clients and checks their secrets."""

    async def verify(self, client_id: str, secret: str) -> RegisteredClient | None:
        """Return the client if ``secret`` is its secret, else ``None``.

        Implementations compare secrets in constant time and return ``None`` alike for an unknown
        client and a wrong secret, so a caller cannot tell which it was.
        """
        ...
