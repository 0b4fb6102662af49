"""Who is calling, what they may do, and the one check every use case starts with."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import urlsplit

from src.application.errors import InsufficientScope, InvalidTarget


class Scope(enum.StrEnum):
    """The scopes a client can be granted."""

    CALCULATOR = "calculator"
    SSE = "sse"
    METRICS = "metrics"  # reading /metrics, when CALCMCP_METRICS_SCOPE asks for it


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


def canonical_resource(uri: str) -> str | None:
    """The canonical form of a resource indicator (RFC 8707), or ``None`` if it is not one.

    An absolute ``http(s)`` URI without a fragment; scheme and host are lower-cased and a
    trailing slash is dropped, so ``HTTPS://Calc.example/mcp/`` and ``https://calc.example/mcp``
    name the same resource.
    """
    try:
        parts = urlsplit(uri)
    except ValueError:  # e.g. an unbalanced IPv6 bracket
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or parts.fragment:
        return None
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}{query}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """The resources this server serves: what a token's audience may name.

    Attributes:
        default: the audience of a token requested without a ``resource`` parameter.
        served: every resource a token may be requested for (canonical form).
    """

    default: str
    served: frozenset[str]

    @classmethod
    def of(cls, default: str, *others: str) -> Resources:
        """Resources from URIs in any (valid) form; the first is the default."""
        canonical = [canonical_resource(uri) for uri in (default, *others)]
        if any(uri is None for uri in canonical):
            raise ValueError("resources must be absolute http(s) URIs without fragments")
        names = [uri for uri in canonical if uri is not None]
        return cls(default=names[0], served=frozenset(names))

    def audience(self, requested: tuple[str, ...]) -> tuple[str, ...]:
        """The audience for a token request naming ``requested`` resources (maybe none).

        Raises:
            InvalidTarget: a requested resource is malformed or not served here.
        """
        if not requested:
            return (self.default,)
        audience = []
        for uri in requested:
            canonical = canonical_resource(uri)
            if canonical is None or canonical not in self.served:
                raise InvalidTarget("the requested resource is not served by this server")
            audience.append(canonical)
        return tuple(dict.fromkeys(audience))
