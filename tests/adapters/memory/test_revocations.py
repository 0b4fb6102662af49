"""MemoryRevocationList: a token id is denied from its revocation until the token's own expiry."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from src.adapters.memory import revocations as revocations_module
from src.adapters.memory.revocations import MemoryRevocationList

pytestmark = pytest.mark.anyio

NOW = 1_700_000_000.0


class WallClock:
    def __init__(self) -> None:
        self.now = NOW

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> WallClock:
    clock = WallClock()
    monkeypatch.setattr(revocations_module, "time", SimpleNamespace(time=clock.time))
    return clock


async def test_a_revoked_id_is_denied_and_others_are_not(clock: WallClock) -> None:
    revocations = MemoryRevocationList()
    await revocations.revoke("jti-1", NOW + 60)
    assert await revocations.is_revoked("jti-1")
    assert not await revocations.is_revoked("jti-2")


async def test_the_denial_lapses_when_the_token_would_have_expired(clock: WallClock) -> None:
    revocations = MemoryRevocationList()
    await revocations.revoke("jti-1", NOW + 60)
    clock.now = NOW + 59.9
    assert await revocations.is_revoked("jti-1")
    clock.now = NOW + 60
    assert not await revocations.is_revoked("jti-1")


@pytest.mark.parametrize("expires_at", [NOW, NOW - 1, 0.0])
async def test_an_already_expired_token_is_not_remembered(
    clock: WallClock, expires_at: float
) -> None:
    revocations = MemoryRevocationList()
    await revocations.revoke("jti-1", expires_at)
    assert not await revocations.is_revoked("jti-1")


async def test_expired_entries_are_purged_as_new_ones_arrive(clock: WallClock) -> None:
    revocations = MemoryRevocationList()
    for n in range(100):
        await revocations.revoke(f"old-{n}", NOW + 10)
    clock.now = NOW + 120
    await revocations.revoke("new", NOW + 600)
    assert not await revocations.is_revoked("old-0")
    assert await revocations.is_revoked("new")
    # Memory is the point of the purge, and only the inside shows it.
    assert list(revocations._revoked) == ["new"]
