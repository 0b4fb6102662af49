"""Access tokens: the claims they carry and the codec that signs and verifies them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessTokenClaims:
    """What an access token asserts (RFC 9068).

    Attributes:
        client_id: the client the token was issued to (also its subject).
        scopes: the scopes granted.
        audience: the resources the token is meant for.
        issued_at: UNIX seconds; also the token's ``nbf``.
        expires_at: UNIX seconds.
        token_id: a unique ``jti``.
    """

    client_id: str
    scopes: frozenset[str]
    audience: tuple[str, ...]
    issued_at: float
    expires_at: float
    token_id: str


class TokenCodec(Protocol):
    """Signs claims into an access token and verifies a token back into claims."""

    def encode(self, claims: AccessTokenClaims) -> str:
        """Sign ``claims`` into a compact token string."""
        ...

    def decode(self, token: str) -> AccessTokenClaims:
        """Verify ``token`` and return its claims.

        Raises:
            InvalidToken: the token is malformed, badly signed, from another issuer, expired or
                not yet valid.
        """
        ...

    def public_keys(self) -> list[dict[str, Any]]:
        """The public keys that verify this codec's tokens, as JWKs (empty for secret keys)."""
        ...
