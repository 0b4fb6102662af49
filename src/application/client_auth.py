"""Client authentication for the token, revocation and introspection endpoints, rate-limited."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from src.application.errors import ApplicationError, InvalidClient, RateLimited
from src.application.ports import ClientRegistry, RateLimiter, RegisteredClient

FAILURE_COST = 5.0
"""A failed authentication takes this many tokens from the caller's buckets (a success, one)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientCredentials:
    """What a client presented, and where from.

    Attributes:
        client_id: the claimed client id (``None``: none presented).
        client_secret: the secret presented with it.
        source: the caller's network address, for per-address limits (``None``: unknown).
    """

    client_id: str | None
    client_secret: str | None
    source: str | None = None


class ClientAuthenticator:
    """Authenticates OAuth clients under per-client and per-address token buckets.

    Rules:
        - every attempt costs one token from the address's and the client id's buckets; an empty
          bucket is :class:`RateLimited` (nothing else is checked);
        - a failure costs :data:`FAILURE_COST` in all, so guessing secrets runs dry fast;
        - unknown client, wrong secret, disabled client and no credentials are all
          :class:`InvalidClient`, indistinguishable to the caller.
    """

    def __init__(self, *, clients: ClientRegistry, limiter: RateLimiter) -> None:
        self._clients = clients
        self._limiter = limiter

    async def authenticate(self, credentials: ClientCredentials) -> RegisteredClient:
        """Return the authenticated client or refuse."""
        keys = _bucket_keys(credentials)
        for key in keys:
            wait = await self._limiter.acquire(key)
            if wait > 0:
                raise RateLimited(wait)
        if credentials.client_id is None or credentials.client_secret is None:
            await self._penalize(keys)
            raise InvalidClient("client authentication is required (HTTP Basic or the form)")
        client = await self._clients.verify(credentials.client_id, credentials.client_secret)
        if client is None or client.disabled:
            await self._penalize(keys)
            raise InvalidClient("client authentication failed")
        return client

    async def audit_name(self, credentials: ClientCredentials) -> str | None:
        """The claimed client id as an audit line of a refusal may show it.

        In clear when it names a registered client; otherwise a fingerprint
        (``unregistered:`` and 12 hex digits of its SHA-256), because what a caller sends as its
        id may be anything, its secret pasted in the wrong field included, and no secret may
        reach a log. The fingerprint still lets an operator match repeated attempts.
        """
        claimed = credentials.client_id
        if not claimed:
            return claimed
        try:
            if await self._clients.get(claimed) is not None:
                return claimed
        except ApplicationError:  # the registry is unavailable: the refusal is still logged
            pass
        digest = hashlib.sha256(claimed.encode("utf-8", "surrogatepass")).hexdigest()
        return f"unregistered:{digest[:12]}"

    async def _penalize(self, keys: list[str]) -> None:
        for key in keys:
            await self._limiter.charge(key, FAILURE_COST - 1)


def _bucket_keys(credentials: ClientCredentials) -> list[str]:
    keys = []
    if credentials.source:
        keys.append(f"address:{credentials.source}")
    if credentials.client_id:
        keys.append(f"client:{credentials.client_id}")
    return keys
