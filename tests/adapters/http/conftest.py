"""The HTTP adapter under test: the app from the real factory, with a fixed clock, ids and secret.

Every test talks to the application through Litestar's ``AsyncTestClient`` (in-process ASGI), so
nothing here may open an endless stream: event streams are tested against the real process in
``tests/e2e``.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from dependency_injector import providers
from litestar.testing import AsyncTestClient

from src.bootstrap import Container, Settings, build_container, create_app

JWT_SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789-ABCDEF"
PUBLIC_URL = "http://calc.test"
DEV_ID, DEV_SECRET = "example_client_id", "example_client_secret"
# RFC 6749 §2.3.1: these must be form-urlencoded before they go into HTTP Basic
ODD_ID, ODD_SECRET = "a b:c", "p@ss:w/rd%"
SSE_ONLY_ID, SSE_ONLY_SECRET = "sse-only", "sse-only-secret"
CALC_ONLY_ID, CALC_ONLY_SECRET = "calc-only", "calc-only-secret"
EXTRA_CLIENTS = [
    {"client_id": ODD_ID, "client_secret": ODD_SECRET, "scopes": ["calculator", "sse"]},
    {"client_id": SSE_ONLY_ID, "client_secret": SSE_ONLY_SECRET, "scopes": ["sse"]},
    {"client_id": CALC_ONLY_ID, "client_secret": CALC_ONLY_SECRET, "scopes": ["calculator"]},
]
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
# Issued-at time of every token: a little in the past, so the tokens are valid right now.
NOW = float(int(time.time()) - 10)
TIMEOUT = 5.0


class FixedClock:
    """A wall clock that stays where the test puts it."""

    def __init__(self, now: float = NOW) -> None:
        self.value = now

    def now(self) -> float:
        return self.value


class SequentialIds:
    """Predictable ids: ``jti-1``, ``jti-2``, ... (and secrets, should anything ask)."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def new_id(self) -> str:
        return f"jti-{next(self._counter)}"

    def new_secret(self) -> str:
        return f"secret-{next(self._counter)}"


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for an app under test: a tmp data dir, a fixed secret, the extra clients."""
    values: dict[str, Any] = {
        "data_dir": str(data_dir),
        "jwt_algorithm": "HS256",
        "jwt_secret": JWT_SECRET,
        # the token endpoint's rate limit is not under test here: these tests make many requests
        "token_rate": 1000.0,
        "token_burst": 1000.0,
        "public_url": PUBLIC_URL,
        "clients": json.dumps(EXTRA_CLIENTS),
    }
    values.update(overrides)
    return Settings(**values)


def make_container(settings: Settings, clock: FixedClock) -> Container:
    """The real container, with the clock and the id source swapped for predictable ones."""
    container = build_container(settings)
    container.clock.override(providers.Object(clock))
    container.ids.override(providers.Singleton(SequentialIds))
    return container


def basic(client_id: str, secret: str) -> str:
    """An HTTP Basic ``Authorization`` value per RFC 6749 §2.3.1 (form-urlencode, then base64)."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


def bearer(token: str) -> dict[str, str]:
    """The ``Authorization`` header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def clock() -> FixedClock:
    """The clock the app reads (tokens' ``iat``, events' ``occurred_at``)."""
    return FixedClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Development settings (the dev client is on)."""
    return make_settings(tmp_path)


@pytest.fixture
def container(settings: Settings, clock: FixedClock) -> Container:
    """The container the app is built from."""
    return make_container(settings, clock)


@pytest.fixture
async def client(container: Container) -> AsyncIterator[AsyncTestClient[Any]]:
    """A test client for the app built by ``create_app(container)``."""
    app = create_app(container)
    async with AsyncTestClient(app=app, raise_server_exceptions=False, timeout=TIMEOUT) as test:
        yield test


GetToken = Callable[..., Awaitable[str]]


@pytest.fixture
def get_token(client: AsyncTestClient[Any]) -> GetToken:
    """``await get_token(scope=..., client_id=..., secret=...)``: an access token via ``/token``."""

    async def fetch(
        scope: str | None = "calculator sse", client_id: str = DEV_ID, secret: str = DEV_SECRET
    ) -> str:
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
        if scope is not None:
            form["scope"] = scope
        response = await client.post("/token", data=form)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    return fetch
