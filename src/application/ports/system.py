"""Ports to the world outside the process: time and randomness."""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    """The current wall-clock time."""

    def now(self) -> float:
        """Seconds since the UNIX epoch."""
        ...


class IdSource(Protocol):
    """Unpredictable identifiers (token ids, session ids)."""

    def new_id(self) -> str:
        """A fresh identifier with at least 128 bits of randomness, URL-safe."""
        ...

    def new_secret(self) -> str:
        """A fresh client secret with 256 bits of randomness, URL-safe."""
        ...
