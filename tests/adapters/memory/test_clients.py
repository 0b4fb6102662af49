"""MemoryClientRegistry: a client comes back only for its own secret."""

from __future__ import annotations

import pytest

from src.adapters.memory.clients import ClientSeed, MemoryClientRegistry

pytestmark = pytest.mark.anyio

SCOPES = frozenset({"calculator", "sse"})


@pytest.fixture
def registry() -> MemoryClientRegistry:
    return MemoryClientRegistry(
        [
            ClientSeed(client_id="alice", secret="alice-secret", scopes=SCOPES),
            ClientSeed(client_id="bob", secret="bob-secret", scopes=frozenset({"sse"})),
        ]
    )


async def test_the_right_secret_returns_the_client(registry: MemoryClientRegistry) -> None:
    client = await registry.verify("alice", "alice-secret")
    assert client is not None
    assert (client.client_id, client.scopes, client.disabled) == ("alice", SCOPES, False)


@pytest.mark.parametrize(
    "secret", ["bob-secret", "", "alice-secret ", "ALICE-SECRET", "alice-secre", "\udcff"]
)
async def test_a_wrong_secret_returns_none(registry: MemoryClientRegistry, secret: str) -> None:
    assert await registry.verify("alice", secret) is None


@pytest.mark.parametrize("secret", ["alice-secret", "", "\x00no client\x00"])
async def test_an_unknown_client_returns_none(registry: MemoryClientRegistry, secret: str) -> None:
    assert await registry.verify("mallory", secret) is None


async def test_registering_again_replaces_the_secret_and_scopes(
    registry: MemoryClientRegistry,
) -> None:
    registry.register(ClientSeed(client_id="alice", secret="rotated", scopes=frozenset({"sse"})))
    assert await registry.verify("alice", "alice-secret") is None
    client = await registry.verify("alice", "rotated")
    assert client is not None
    assert client.scopes == frozenset({"sse"})
