"""ClientAuthenticator: who may ask for tokens, and how fast anyone may guess a secret."""

from __future__ import annotations

import pytest

from src.adapters.memory import rate_limits as rate_limits_module
from src.adapters.memory.clients import ClientSeed, MemoryClientStore
from src.adapters.memory.rate_limits import MemoryRateLimiter
from src.application.client_auth import FAILURE_COST, ClientAuthenticator, ClientCredentials
from src.application.errors import InvalidClient, RateLimited
from src.application.ports import RegisteredClient
from tests.application.fakes import ALL_SCOPES, FakeClientRegistry, FakeRateLimiter

pytestmark = pytest.mark.anyio

SECRET = "alice-secret-9f2b"
ADDRESS = "192.0.2.7"
ALICE_BUCKET, ADDRESS_BUCKET = "client:alice", f"address:{ADDRESS}"
CAPACITY = 10.0


class Monotonic:
    """Stands in for ``time`` in the memory rate limiter: seconds move only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def store() -> MemoryClientStore:
    return MemoryClientStore([ClientSeed(client_id="alice", secret=SECRET, scopes=ALL_SCOPES)])


@pytest.fixture
def limiter() -> FakeRateLimiter:
    return FakeRateLimiter(capacity=CAPACITY)


@pytest.fixture
def monotonic(monkeypatch: pytest.MonkeyPatch) -> Monotonic:
    clock = Monotonic()
    monkeypatch.setattr(rate_limits_module, "time", clock)
    return clock


def alice(secret: str | None = SECRET, source: str | None = ADDRESS) -> ClientCredentials:
    return ClientCredentials(client_id="alice", client_secret=secret, source=source)


async def test_the_right_secret_returns_the_client(
    store: MemoryClientStore, limiter: FakeRateLimiter
) -> None:
    client = await ClientAuthenticator(clients=store, limiter=limiter).authenticate(alice())
    assert (client.client_id, client.scopes, client.disabled) == ("alice", ALL_SCOPES, False)


async def test_a_success_costs_one_token_from_the_address_and_the_client_buckets(
    store: MemoryClientStore, limiter: FakeRateLimiter
) -> None:
    await ClientAuthenticator(clients=store, limiter=limiter).authenticate(alice())
    assert limiter.level(ADDRESS_BUCKET) == CAPACITY - 1
    assert limiter.level(ALICE_BUCKET) == CAPACITY - 1


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param(alice(secret="wrong"), id="wrong-secret"),
        pytest.param(alice(secret=None), id="no-secret"),
        pytest.param(alice(secret=""), id="empty-secret"),
    ],
)
async def test_a_failure_costs_failure_cost_from_both_buckets(
    store: MemoryClientStore, limiter: FakeRateLimiter, credentials: ClientCredentials
) -> None:
    with pytest.raises(InvalidClient):
        await ClientAuthenticator(clients=store, limiter=limiter).authenticate(credentials)
    assert limiter.level(ADDRESS_BUCKET) == CAPACITY - FAILURE_COST
    assert limiter.level(ALICE_BUCKET) == CAPACITY - FAILURE_COST


async def test_an_unknown_client_costs_its_own_bucket_and_the_address_bucket(
    store: MemoryClientStore, limiter: FakeRateLimiter
) -> None:
    mallory = ClientCredentials(client_id="mallory", client_secret=SECRET, source=ADDRESS)
    with pytest.raises(InvalidClient):
        await ClientAuthenticator(clients=store, limiter=limiter).authenticate(mallory)
    assert limiter.level("client:mallory") == CAPACITY - FAILURE_COST
    assert limiter.level(ADDRESS_BUCKET) == CAPACITY - FAILURE_COST
    assert limiter.level(ALICE_BUCKET) == CAPACITY


async def test_without_a_source_address_only_the_client_bucket_is_charged(
    store: MemoryClientStore, limiter: FakeRateLimiter
) -> None:
    await ClientAuthenticator(clients=store, limiter=limiter).authenticate(alice(source=None))
    assert limiter.level(ALICE_BUCKET) == CAPACITY - 1
    assert limiter.level("address:None") == CAPACITY


@pytest.mark.parametrize("empty", [ADDRESS_BUCKET, ALICE_BUCKET])
async def test_an_empty_bucket_is_rate_limited_without_consulting_the_registry(
    store: MemoryClientStore, limiter: FakeRateLimiter, empty: str
) -> None:
    limiter.empty(empty)
    with pytest.raises(RateLimited) as limited:
        await ClientAuthenticator(clients=store, limiter=limiter).authenticate(alice())
    assert limited.value.retry_after > 0
    # A successful verify stamps last use: the right secret was never checked.
    client = await store.get("alice")
    assert client is not None
    assert client.last_used_at is None


async def test_an_address_drained_by_one_client_limits_every_client_from_it(
    store: MemoryClientStore, limiter: FakeRateLimiter
) -> None:
    authenticator = ClientAuthenticator(clients=store, limiter=limiter)
    for _ in range(2):
        with pytest.raises(InvalidClient):
            await authenticator.authenticate(
                ClientCredentials(client_id="mallory", client_secret="guess", source=ADDRESS)
            )
    with pytest.raises(RateLimited):
        await authenticator.authenticate(alice())
    client = await authenticator.authenticate(alice(source="198.51.100.1"))
    assert client.client_id == "alice"


async def test_a_disabled_client_is_an_invalid_client_even_with_its_secret(
    limiter: FakeRateLimiter,
) -> None:
    disabled = RegisteredClient(client_id="alice", scopes=ALL_SCOPES, disabled=True)
    clients = FakeClientRegistry([(disabled, SECRET)])
    with pytest.raises(InvalidClient):
        await ClientAuthenticator(clients=clients, limiter=limiter).authenticate(alice())
    assert limiter.level(ALICE_BUCKET) == CAPACITY - FAILURE_COST


async def test_a_client_disabled_in_the_store_is_refused_like_a_wrong_secret(
    store: MemoryClientStore, limiter: FakeRateLimiter
) -> None:
    await store.set_disabled("alice", True)
    with pytest.raises(InvalidClient) as disabled:
        await ClientAuthenticator(clients=store, limiter=limiter).authenticate(alice())
    with pytest.raises(InvalidClient) as wrong:
        await ClientAuthenticator(clients=store, limiter=limiter).authenticate(alice("wrong"))
    assert str(disabled.value) == str(wrong.value)


async def test_no_client_id_is_an_invalid_client(
    store: MemoryClientStore, limiter: FakeRateLimiter
) -> None:
    anonymous = ClientCredentials(client_id=None, client_secret=SECRET, source=ADDRESS)
    with pytest.raises(InvalidClient):
        await ClientAuthenticator(clients=store, limiter=limiter).authenticate(anonymous)
    assert limiter.level(ADDRESS_BUCKET) == CAPACITY - FAILURE_COST


async def test_a_burst_of_wrong_secrets_is_limited_and_the_right_one_gets_in_after_a_refill(
    store: MemoryClientStore, monotonic: Monotonic
) -> None:
    authenticator = ClientAuthenticator(
        clients=store, limiter=MemoryRateLimiter(capacity=CAPACITY, rate=1.0)
    )
    failures = 0
    with pytest.raises(RateLimited) as limited:  # noqa: PT012
        for _ in range(100):
            try:
                await authenticator.authenticate(alice(secret=f"guess-{failures}"))
            except InvalidClient:
                failures += 1
    assert failures == CAPACITY // FAILURE_COST
    assert limited.value.retry_after > 0
    with pytest.raises(RateLimited):
        await authenticator.authenticate(alice())
    monotonic.now += limited.value.retry_after
    client = await authenticator.authenticate(alice())
    assert client.client_id == "alice"


async def test_guessing_at_the_refill_rate_costs_failure_cost_per_guess(
    store: MemoryClientStore, monotonic: Monotonic
) -> None:
    # A penalty taken all-or-nothing would cost a guess one token once the bucket ran low, so a
    # steady guesser would get `rate` guesses a second rather than rate / FAILURE_COST.
    rate, seconds = 1.0, 100
    authenticator = ClientAuthenticator(
        clients=store, limiter=MemoryRateLimiter(capacity=CAPACITY, rate=rate)
    )
    guesses = 0
    for _ in range(seconds):
        try:
            await authenticator.authenticate(alice(secret="guess"))
        except InvalidClient:
            guesses += 1
        except RateLimited:
            pass
        monotonic.now += 1
    assert guesses <= (CAPACITY + rate * seconds) / FAILURE_COST + 1
