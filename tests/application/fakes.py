"""Small hand-written fakes for the application's ports, and helpers the use-case tests share."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from src.adapters.memory.revocations import MemoryRevocationList
from src.adapters.memory.stream_slots import MemoryStreamSlots
from src.application.errors import InvalidToken
from src.application.ports import (
    AccessTokenClaims,
    AuditEvent,
    AuditTrail,
    ClientRegistry,
    Clock,
    EventRecord,
    IdSource,
    RateLimiter,
    RegisteredClient,
    Subscription,
    TokenCodec,
)
from src.application.ports.events import EventBus
from src.application.ports.security import RevocationList
from src.application.ports.streams import StreamSlots
from src.application.security import Principal, Scope
from src.application.stream_events import StreamEvents

AUDIENCE = "https://calc.example/mcp"
NOW = 1_700_000_000.0
ALL_SCOPES = frozenset({Scope.CALCULATOR.value, Scope.SSE.value})


class FakeClock(Clock):
    """A wall clock that only moves when a test moves it."""

    def __init__(self, now: float = NOW) -> None:
        self._now = now

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self._now += seconds


class SequentialIds(IdSource):
    """Predictable ids: ``id-1``, ``id-2``, ..."""

    def __init__(self, prefix: str = "id") -> None:
        self._prefix = prefix
        self._counter = itertools.count(1)

    def new_id(self) -> str:
        return f"{self._prefix}-{next(self._counter)}"

    def new_secret(self) -> str:
        return f"{self._prefix}-secret-{next(self._counter)}"


class FakeTokenCodec(TokenCodec):
    """Tokens are opaque handles on the claims they were issued for; unknown ones are invalid."""

    def __init__(self) -> None:
        self.issued: dict[str, AccessTokenClaims] = {}

    def encode(self, claims: AccessTokenClaims) -> str:
        token = f"token-{len(self.issued) + 1}"
        self.issued[token] = claims
        return token

    def decode(self, token: str) -> AccessTokenClaims:
        try:
            return self.issued[token]
        except KeyError:
            raise InvalidToken("the access token is invalid") from None

    def public_keys(self) -> list[dict[str, Any]]:
        return []


class FakeClientRegistry(ClientRegistry):
    """Clients given as they are (including disabled ones), with plain-text secrets."""

    def __init__(self, clients: Iterable[tuple[RegisteredClient, str]]) -> None:
        self._clients = {client.client_id: (client, secret) for client, secret in clients}

    async def verify(self, client_id: str, secret: str) -> RegisteredClient | None:
        client, expected = self._clients.get(client_id, (None, None))
        return client if expected == secret else None


class FakeAuditTrail(AuditTrail):
    """Keeps every recorded event, in order."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)


class FakeRateLimiter(RateLimiter):
    """Token buckets of ``capacity`` that never refill by themselves (a test calls ``refill``).

    Like the real limiter, a request for more tokens than are left takes nothing and says how
    long to wait (here at one token a second), and a penalty may leave a bucket in debt, up to
    one bucket's worth.
    """

    def __init__(self, capacity: float = 100.0) -> None:
        self.capacity = capacity
        self._levels: dict[str, float] = {}

    async def acquire(self, key: str, cost: float = 1.0) -> float:
        level = self.level(key)
        if level < cost:
            return min(cost, self.capacity) - level
        self._levels[key] = level - cost
        return 0.0

    async def charge(self, key: str, cost: float) -> None:
        self._levels[key] = max(-self.capacity, self.level(key) - cost)

    def level(self, key: str) -> float:
        """The tokens left in ``key``'s bucket."""
        return self._levels.get(key, self.capacity)

    def empty(self, key: str) -> None:
        """Drain ``key``'s bucket."""
        self._levels[key] = 0.0

    def refill(self) -> None:
        """Fill every bucket back to capacity."""
        self._levels.clear()


def principal(
    client_id: str = "alice",
    scopes: Iterable[str] = ALL_SCOPES,
    *,
    expires_at: float = NOW + 3600,
) -> Principal:
    """A principal as Authenticate would build it."""
    return Principal(
        client_id=client_id,
        scopes=frozenset(scopes),
        token_id=f"jti-{client_id}",
        expires_at=expires_at,
    )


async def next_events(subscription: Subscription, timeout: float = 1.0) -> Sequence[EventRecord]:
    """The next batch, which the test expects to be non-empty well within ``timeout``."""
    batch = await subscription.next_batch(timeout)
    assert batch, "expected events, got none before the timeout"
    return batch


def stream_events(
    bus: EventBus,
    clock: Clock | None = None,
    *,
    revocations: RevocationList | None = None,
    slots: StreamSlots | None = None,
    check_every: float = 5.0,
) -> StreamEvents:
    """``StreamEvents`` over ``bus``: no token revoked and generous stream limits, unless given."""
    return StreamEvents(
        events=bus,
        clock=clock or FakeClock(NOW),
        revocations=revocations or MemoryRevocationList(),
        slots=slots or MemoryStreamSlots(max_streams=1000, max_per_client=100),
        check_every=check_every,
    )
