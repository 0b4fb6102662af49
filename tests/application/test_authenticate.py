"""Authenticate: a bearer token becomes a principal only when present, valid and meant for us."""

from __future__ import annotations

import time

import pytest

from src.adapters.jwt.codec import JwtTokenCodec
from src.adapters.memory.clients import ClientSeed, MemoryClientRegistry
from src.adapters.system import SecretsIdSource, SystemClock
from src.application.authenticate import Authenticate, AuthenticateCommand
from src.application.errors import AuthenticationRequired, InvalidToken
from src.application.issue_token import IssueToken, IssueTokenCommand
from src.application.ports import AccessTokenClaims
from src.application.security import Principal
from tests.application.fakes import ALL_SCOPES, AUDIENCE, NOW, FakeTokenCodec

pytestmark = pytest.mark.anyio

OTHER_AUDIENCE = "https://elsewhere.example/api"


def claims(audience: tuple[str, ...] = (AUDIENCE,)) -> AccessTokenClaims:
    return AccessTokenClaims(
        client_id="alice",
        scopes=frozenset({"calculator"}),
        audience=audience,
        issued_at=NOW,
        expires_at=NOW + 600,
        token_id="jti-7",
    )


@pytest.mark.parametrize("token", [None, ""])
async def test_no_token_requires_authentication(token: str | None) -> None:
    with pytest.raises(AuthenticationRequired):
        await Authenticate(codec=FakeTokenCodec()).execute(
            AuthenticateCommand(token=token, resource=AUDIENCE)
        )


async def test_a_token_the_codec_rejects_is_invalid() -> None:
    with pytest.raises(InvalidToken):
        await Authenticate(codec=FakeTokenCodec()).execute(
            AuthenticateCommand(token="forged", resource=AUDIENCE)
        )


async def test_a_token_for_another_audience_is_invalid() -> None:
    codec = FakeTokenCodec()
    token = codec.encode(claims(audience=(OTHER_AUDIENCE,)))
    with pytest.raises(InvalidToken):
        await Authenticate(codec=codec).execute(AuthenticateCommand(token=token, resource=AUDIENCE))


async def test_a_good_token_yields_its_principal() -> None:
    codec = FakeTokenCodec()
    token = codec.encode(claims())
    principal = await Authenticate(codec=codec).execute(
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
        principal = await Authenticate(codec=codec).execute(
            AuthenticateCommand(token=token, resource=resource)
        )
        assert principal.client_id == "alice"


async def test_a_token_issued_by_issue_token_authenticates_with_the_jwt_codec() -> None:
    codec = JwtTokenCodec(secret=b"a test secret that is 32+ bytes long", issuer="calcmcp-test")
    issue = IssueToken(
        clients=MemoryClientRegistry(
            [ClientSeed(client_id="alice", secret="alice-secret", scopes=ALL_SCOPES)]
        ),
        codec=codec,
        clock=SystemClock(),
        ids=SecretsIdSource(),
        lifetime=300,
        audience=AUDIENCE,
    )
    grant = await issue.execute(
        IssueTokenCommand(
            grant_type="client_credentials",
            client_id="alice",
            client_secret="alice-secret",
            scope="sse",
        )
    )
    authenticate = Authenticate(codec=codec)
    principal = await authenticate.execute(
        AuthenticateCommand(token=grant.access_token, resource=AUDIENCE)
    )
    assert principal.client_id == "alice"
    assert principal.scopes == frozenset({"sse"})
    assert principal.token_id
    assert 0 < principal.expires_at - time.time() <= 300
    with pytest.raises(InvalidToken):
        await authenticate.execute(
            AuthenticateCommand(token=grant.access_token, resource=OTHER_AUDIENCE)
        )
