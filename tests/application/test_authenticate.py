"""Authenticate: a bearer token becomes a principal only when present, valid, meant for us and
not revoked."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from src.adapters.jwt.codec import JwtTokenCodec, KeyRing
from src.adapters.jwt.keys import static_hmac_key
from src.adapters.memory import revocations as revocations_module
from src.adapters.memory.clients import ClientSeed, MemoryClientStore
from src.adapters.memory.rate_limits import MemoryRateLimiter
from src.adapters.memory.revocations import MemoryRevocationList
from src.adapters.system import SecretsIdSource, SystemClock
from src.application.authenticate import Authenticate, AuthenticateCommand
from src.application.client_auth import ClientAuthenticator, ClientCredentials
from src.application.errors import AuthenticationRequired, InvalidToken
from src.application.issue_token import IssueToken, IssueTokenCommand
from src.application.ports import AccessTokenClaims
from src.application.security import Principal, Resources
from tests.application.fakes import (
    ALL_SCOPES,
    AUDIENCE,
    NOW,
    FakeAuditTrail,
    FakeClock,
    FakeTokenCodec,
)

pytestmark = pytest.mark.anyio

OTHER_AUDIENCE = "https://elsewhere.example/api"
LIFETIME = 600


def claims(audience: tuple[str, ...] = (AUDIENCE,), jti: str = "jti-7") -> AccessTokenClaims:
    return AccessTokenClaims(
        client_id="alice",
        scopes=frozenset({"calculator"}),
        audience=audience,
        issued_at=NOW,
        expires_at=NOW + LIFETIME,
        token_id=jti,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def revocations(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> MemoryRevocationList:
    """The memory revocation list, telling the time by the test's clock."""
    monkeypatch.setattr(revocations_module, "time", SimpleNamespace(time=clock.now))
    return MemoryRevocationList()


def authenticate(codec: FakeTokenCodec | JwtTokenCodec) -> Authenticate:
    return Authenticate(codec=codec, revocations=MemoryRevocationList())


@pytest.mark.parametrize("token", [None, ""])
async def test_no_token_requires_authentication(token: str | None) -> None:
    with pytest.raises(AuthenticationRequired):
        await authenticate(FakeTokenCodec()).execute(
            AuthenticateCommand(token=token, resource=AUDIENCE)
        )


async def test_a_token_the_codec_rejects_is_invalid() -> None:
    with pytest.raises(InvalidToken):
        await authenticate(FakeTokenCodec()).execute(
            AuthenticateCommand(token="forged", resource=AUDIENCE)
        )


async def test_a_token_for_another_audience_is_invalid() -> None:
    codec = FakeTokenCodec()
    token = codec.encode(claims(audience=(OTHER_AUDIENCE,)))
    with pytest.raises(InvalidToken):
        await authenticate(codec).execute(AuthenticateCommand(token=token, resource=AUDIENCE))


async def test_a_good_token_yields_its_principal() -> None:
    codec = FakeTokenCodec()
    token = codec.encode(claims())
    principal = await authenticate(codec).execute(
        AuthenticateCommand(token=token, resource=AUDIENCE)
    )
    assert principal == Principal(
        client_id="alice",
        scopes=frozenset({"calculator"}),
        token_id="jti-7",
        expires_at=NOW + 600,
    )


async def test_a_token_with_several_audiences_is_accepted_at_each() -> None:
    codec = FakeTokenCodec()
    token = codec.encode(claims(audience=(OTHER_AUDIENCE, AUDIENCE)))
    for resource in (AUDIENCE, OTHER_AUDIENCE):
        principal = await authenticate(codec).execute(
            AuthenticateCommand(token=token, resource=resource)
        )
        assert principal.client_id == "alice"


async def test_a_token_issued_by_issue_token_authenticates_with_the_jwt_codec() -> None:
    keys = KeyRing(
        lambda: [static_hmac_key(b"a test secret that is 32+ bytes long")], algorithm="HS256"
    )
    codec = JwtTokenCodec(keys=keys, issuer="calcmcp-test", algorithms=("HS256",))
    clients = MemoryClientStore(
        [ClientSeed(client_id="alice", secret="alice-secret", scopes=ALL_SCOPES)]
    )
    issue = IssueToken(
        authenticator=ClientAuthenticator(
            clients=clients, limiter=MemoryRateLimiter(capacity=10, rate=1)
        ),
        codec=codec,
        clock=SystemClock(),
        ids=SecretsIdSource(),
        audit=FakeAuditTrail(),
        lifetime=300,
        resources=Resources.of(AUDIENCE),
    )
    grant = await issue.execute(
        IssueTokenCommand(
            grant_type="client_credentials",
            credentials=ClientCredentials(client_id="alice", client_secret="alice-secret"),
            scope="sse",
        )
    )
    use_case = authenticate(codec)
    principal = await use_case.execute(
        AuthenticateCommand(token=grant.access_token, resource=AUDIENCE)
    )
    assert principal.client_id == "alice"
    assert principal.scopes == frozenset({"sse"})
    assert principal.token_id
    assert 0 < principal.expires_at - time.time() <= 300
    with pytest.raises(InvalidToken):
        await use_case.execute(
            AuthenticateCommand(token=grant.access_token, resource=OTHER_AUDIENCE)
        )


async def test_a_revoked_token_is_invalid_and_other_tokens_are_not(
    revocations: MemoryRevocationList,
) -> None:
    codec = FakeTokenCodec()
    revoked, kept = codec.encode(claims(jti="jti-1")), codec.encode(claims(jti="jti-2"))
    use_case = Authenticate(codec=codec, revocations=revocations)
    await revocations.revoke("jti-1", NOW + LIFETIME)
    with pytest.raises(InvalidToken, match="revoked"):
        await use_case.execute(AuthenticateCommand(token=revoked, resource=AUDIENCE))
    principal = await use_case.execute(AuthenticateCommand(token=kept, resource=AUDIENCE))
    assert principal.token_id == "jti-2"


async def test_a_revocation_lapses_once_the_token_would_have_expired(
    clock: FakeClock, revocations: MemoryRevocationList
) -> None:
    # The fake codec never expires tokens, so what the use case answers after the expiry shows
    # what the revocation list still remembers.
    codec = FakeTokenCodec()
    token = codec.encode(claims())
    use_case = Authenticate(codec=codec, revocations=revocations)
    await revocations.revoke("jti-7", NOW + LIFETIME)
    clock.advance(LIFETIME - 1)
    with pytest.raises(InvalidToken):
        await use_case.execute(AuthenticateCommand(token=token, resource=AUDIENCE))
    clock.advance(1)
    assert not await revocations.is_revoked("jti-7")
    principal = await use_case.execute(AuthenticateCommand(token=token, resource=AUDIENCE))
    assert principal.token_id == "jti-7"


async def test_revoking_an_already_expired_token_is_not_remembered(
    revocations: MemoryRevocationList,
) -> None:
    codec = FakeTokenCodec()
    token = codec.encode(claims())
    await revocations.revoke("jti-7", NOW - 1)
    assert not await revocations.is_revoked("jti-7")
    use_case = Authenticate(codec=codec, revocations=revocations)
    assert (await use_case.execute(AuthenticateCommand(token=token, resource=AUDIENCE))).client_id


async def test_a_revoked_jwt_is_refused_even_after_it_was_verified_once() -> None:
    # The codec caches verified tokens; revocation must still win over the cache.
    keys = KeyRing(lambda: [static_hmac_key(b"s" * 32)], algorithm="HS256")
    codec = JwtTokenCodec(keys=keys, issuer="calcmcp-test", algorithms=("HS256",))
    now = time.time()
    token = codec.encode(
        AccessTokenClaims(
            client_id="alice",
            scopes=frozenset({"sse"}),
            audience=(AUDIENCE,),
            issued_at=now - 1,
            expires_at=now + LIFETIME,
            token_id="jti-cached",
        )
    )
    revocations = MemoryRevocationList()
    use_case = Authenticate(codec=codec, revocations=revocations)
    await use_case.execute(AuthenticateCommand(token=token, resource=AUDIENCE))
    await revocations.revoke("jti-cached", now + LIFETIME)
    with pytest.raises(InvalidToken):
        await use_case.execute(AuthenticateCommand(token=token, resource=AUDIENCE))
