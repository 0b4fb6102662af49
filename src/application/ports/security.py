"""Ports guarding the token endpoint and its tokens: revocation, rate limits, audit."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class RevocationList(Protocol):
    """Token ids revoked before their expiry (RFC 7009), denied until they would have expired."""

    async def revoke(self, token_id: str, expires_at: float) -> None:
        """Deny ``token_id`` from now until ``expires_at`` (UNIX seconds)."""
        ...

    async def is_revoked(self, token_id: str) -> bool:
        """Whether ``token_id`` has been revoked (and has not expired since)."""
        ...


class RateLimiter(Protocol):
    """Token buckets keyed by caller (client id, source address)."""

    async def acquire(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from ``key``'s bucket.

        Returns:
            0 when allowed; otherwise the seconds to wait before ``cost`` tokens are there
            (nothing is taken then).
        """
        ...

    async def charge(self, key: str, cost: float) -> None:
        """Take ``cost`` tokens from ``key``'s bucket even if that leaves it in debt (penalties)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """A security-relevant event: a token issued, refused, revoked or introspected.

    Never carries a secret or a whole token; ``token_id`` is the ``jti``.
    """

    action: str
    outcome: str
    client_id: str | None = None
    scopes: tuple[str, ...] = ()
    reason: str | None = None
    token_id: str | None = None
    details: dict[str, str] = field(default_factory=dict)


class AuditTrail(Protocol):
    """Where security events are recorded."""

    def record(self, event: AuditEvent) -> None:
        """Record ``event`` (one structured line per event)."""
        ...
