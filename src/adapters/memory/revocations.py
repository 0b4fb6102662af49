"""Revoked token ids, kept in memory until the tokens would have expired anyway."""

from __future__ import annotations

import time

from src.application.ports import RevocationList


class MemoryRevocationList(RevocationList):
    """A dict of revoked ``jti`` to expiry; expired entries are dropped as new ones arrive."""

    def __init__(self) -> None:
        self._revoked: dict[str, float] = {}
        self._next_purge = 0.0

    async def revoke(self, token_id: str, expires_at: float) -> None:
        """Deny ``token_id`` until ``expires_at``."""
        now = time.time()
        if expires_at > now:
            self._revoked[token_id] = expires_at
        if now >= self._next_purge:
            self._revoked = {jti: exp for jti, exp in self._revoked.items() if exp > now}
            self._next_purge = now + 60

    async def is_revoked(self, token_id: str) -> bool:
        """Whether ``token_id`` is denied."""
        expires_at = self._revoked.get(token_id)
        return expires_at is not None and expires_at > time.time()
