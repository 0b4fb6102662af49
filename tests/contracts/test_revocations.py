"""The RevocationList contract, run against every adapter: in memory, and on Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import anyio
import pytest

from src.adapters.memory.revocations import MemoryRevocationList
from src.adapters.redis import RedisRevocationList
from src.application.ports import RevocationList
from tests.contracts.redis_support import Keyspace, keyspace

pytestmark = pytest.mark.anyio


@pytest.fixture
async def space() -> AsyncIterator[Keyspace]:
    async with keyspace() as opened:
        yield opened


@pytest.fixture(params=["memory", "redis"])
def revocations(request: pytest.FixtureRequest, space: Keyspace) -> RevocationList:
    if request.param == "memory":
        return MemoryRevocationList()
    return RedisRevocationList(space.client, prefix=space.prefix)


async def test_a_revoked_id_is_denied_and_others_are_not(revocations: RevocationList) -> None:
    await revocations.revoke("jti-1", time.time() + 60)
    assert await revocations.is_revoked("jti-1")
    assert not await revocations.is_revoked("jti-2")
    assert not await revocations.is_revoked("")


async def test_the_denial_lapses_when_the_token_would_have_expired(
    revocations: RevocationList,
) -> None:
    await revocations.revoke("jti-1", time.time() + 0.3)
    assert await revocations.is_revoked("jti-1")
    await anyio.sleep(0.4)
    assert not await revocations.is_revoked("jti-1")


@pytest.mark.parametrize("ago", [0.0, 1.0, time.time()])
async def test_an_already_expired_token_is_not_remembered(
    revocations: RevocationList, ago: float
) -> None:
    await revocations.revoke("jti-1", time.time() - ago)
    assert not await revocations.is_revoked("jti-1")


async def test_revoking_twice_keeps_the_id_denied(revocations: RevocationList) -> None:
    await revocations.revoke("jti-1", time.time() + 60)
    await revocations.revoke("jti-1", time.time() + 60)
    assert await revocations.is_revoked("jti-1")


# What only Redis can show: instances sharing the list, and the bound on a cached answer.


async def test_a_revocation_through_one_instance_is_seen_by_another_within_the_bound(
    space: Keyspace,
) -> None:
    here = RedisRevocationList(space.client, prefix=space.prefix, negative_ttl=0.3)
    there = RedisRevocationList(space.client, prefix=space.prefix, negative_ttl=0.3)
    assert not await there.is_revoked("jti-1")  # now cached as "not revoked" there
    await here.revoke("jti-1", time.time() + 60)
    assert await here.is_revoked("jti-1")  # at once where it was revoked
    await anyio.sleep(0.35)
    assert await there.is_revoked("jti-1")  # within negative_ttl elsewhere


async def test_a_fresh_instance_sees_a_revocation_at_once(space: Keyspace) -> None:
    await RedisRevocationList(space.client, prefix=space.prefix).revoke("j", time.time() + 60)
    assert await RedisRevocationList(space.client, prefix=space.prefix).is_revoked("j")


async def test_a_revoked_answer_is_kept_without_asking_redis_again(space: Keyspace) -> None:
    revocations = RedisRevocationList(space.client, prefix=space.prefix)
    await revocations.revoke("jti-1", time.time() + 60)
    await space.client.delete(f"{space.prefix}revoked:jti-1")  # revocation is never undone
    assert await revocations.is_revoked("jti-1")


async def test_the_revocation_key_expires_with_the_token(space: Keyspace) -> None:
    await RedisRevocationList(space.client, prefix=space.prefix).revoke("j", time.time() + 60)
    ttl = await space.client.pttl(f"{space.prefix}revoked:j")
    assert 59_000 < ttl <= 60_000
