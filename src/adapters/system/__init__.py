"""Adapters to the operating system: the wall clock and the random-number source."""

from __future__ import annotations

import secrets
import time

from src.application.ports import Clock, IdSource


class SystemClock(Clock):
    """The system's wall clock."""

    def now(self) -> float:
        """Seconds since the UNIX epoch."""
        return time.time()


class SecretsIdSource(IdSource):
    """128-bit identifiers and 256-bit secrets, URL-safe, from the operating system's CSPRNG."""

    def new_id(self) -> str:
        """A fresh random identifier."""
        return secrets.token_urlsafe(16)

    def new_secret(self) -> str:
        """A fresh random client secret."""
        return secrets.token_urlsafe(32)
