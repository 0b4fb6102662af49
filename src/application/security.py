"""Who is calling, what they may do, and the one check every use case starts with."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from src.application.errors import InsufficientScope


class Scope(enum.StrEnum):
    """The scopes a client can be granted."""

    CALCULATOR = "calculator"
    SSE = "sse"


KNOWN_SCOPES = frozenset(Scope)


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    """An authenticated caller, as established from its access token.

    Attributes:
        client_id: the OAuth client the token was issued to.
        scopes: the scopes the token grants.
        token_id: the token's ``jti``, for revocation.
        expires_at: when the token expires, in UNIX seconds.
    """

    client_id: str
    scopes: frozenset[str]
    token_id: str
    expires_at: float


def require_scope(principal: Principal, scope: Scope) -> None:
    """Refuse with :class:`InsufficientScope` unless ``principal`` holds ``scope``."""
    if scope not in principal.scopes:
        raise InsufficientScope(scope)
