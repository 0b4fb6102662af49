"""IssueToken: the client-credentials grant, every refusal, and the claims of the token it signs."""

from __future__ import annotations

import pytest

from src.adapters.memory.clients import ClientSeed, MemoryClientRegistry
from src.application.errors import (
    ApplicationError,
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from src.application.issue_token import IssueToken, IssueTokenCommand
from src.application.ports import ClientRegistry, RegisteredClient
from tests.application.fakes import (
    ALL_SCOPES,
    AUDIENCE,
    NOW,
    FakeClientRegistry,
    FakeClock,
    FakeTokenCodec,
    SequentialIds,
)

pytestmark = pytest.mark.anyio

LIFETIME = 900
SEEDS = (
    ClientSeed(client_id="alice", secret="alice-secret", scopes=ALL_SCOPES),
    ClientSeed(client_id="bob", secret="bob-secret", scopes=frozenset({"calculator"})),
    ClientSeed(client_id="nobody", secret="nobody-secret", scopes=frozenset()),
)


@pytest.fixture
def codec() -> FakeTokenCodec:
    return FakeTokenCodec()


def issuer(codec: FakeTokenCodec, clients: ClientRegistry | None = None) -> IssueToken:
    return IssueToken(
        clients=clients or MemoryClientRegistry(SEEDS),
        codec=codec,
        clock=FakeClock(NOW),
        ids=SequentialIds("jti"),
        lifetime=LIFETIME,
        audience=AUDIENCE,
    )


# The defaults are alice's test credentials, as seeded above.
def request(
    client_id: str | None = "alice",
    secret: str | None = "alice-secret",  # noqa: S107
    scope: str | None = None,
    grant_type: str | None = "client_credentials",
) -> IssueTokenCommand:
    return IssueTokenCommand(
        grant_type=grant_type, client_id=client_id, client_secret=secret, scope=scope
    )


REFUSALS = [
    pytest.param(request(grant_type=None), InvalidRequest, id="grant-type-missing"),
    pytest.param(request(grant_type="password"), UnsupportedGrantType, id="password-grant"),
    pytest.param(
        request(grant_type="authorization_code"), UnsupportedGrantType, id="authorization-code"
    ),
    pytest.param(request(grant_type="CLIENT_CREDENTIALS"), UnsupportedGrantType, id="grant-case"),
    pytest.param(request(client_id=None), InvalidClient, id="client-id-missing"),
    pytest.param(request(secret=None), InvalidClient, id="secret-missing"),
    pytest.param(request(client_id=None, secret=None), InvalidClient, id="credentials-missing"),
    pytest.param(request(client_id="mallory", secret="x"), InvalidClient, id="unknown-client"),
    pytest.param(request(secret="bob-secret"), InvalidClient, id="wrong-secret"),
    pytest.param(request(secret=""), InvalidClient, id="empty-secret"),
    pytest.param(request(scope="admin"), InvalidScope, id="unknown-scope"),
    pytest.param(request(scope="calculator admin"), InvalidScope, id="one-unknown-scope"),
    pytest.param(request("bob", "bob-secret", scope="sse"), InvalidScope, id="beyond-client"),
    pytest.param(
        request("bob", "bob-secret", scope="calculator sse"), InvalidScope, id="partly-beyond"
    ),
    pytest.param(request("nobody", "nobody-secret"), UnauthorizedClient, id="no-scopes"),
    pytest.param(
        request("nobody", "nobody-secret", scope="sse"), UnauthorizedClient, id="no-scopes-asked"
    ),
]


@pytest.mark.parametrize(("command", "error"), REFUSALS)
async def test_refused_requests_raise_their_error_and_sign_nothing(
    codec: FakeTokenCodec, command: IssueTokenCommand, error: type[ApplicationError]
) -> None:
    with pytest.raises(error) as raised:
        await issuer(codec).execute(command)
    assert type(raised.value) is error
    assert codec.issued == {}


async def test_a_disabled_client_is_refused_as_if_unknown(codec: FakeTokenCodec) -> None:
    disabled = RegisteredClient(client_id="carol", scopes=ALL_SCOPES, disabled=True)
    clients = FakeClientRegistry([(disabled, "carol-secret")])
    with pytest.raises(InvalidClient):
        await issuer(codec, clients).execute(request("carol", "carol-secret"))
    assert codec.issued == {}


@pytest.mark.parametrize("scope", [None, "", "   "])
async def test_no_requested_scope_grants_all_the_clients_scopes(
    codec: FakeTokenCodec, scope: str | None
) -> None:
    grant = await issuer(codec).execute(request(scope=scope))
    assert grant.scopes == ("calculator", "sse")
    assert codec.issued[grant.access_token].scopes == ALL_SCOPES


async def test_requested_scopes_are_granted_in_request_order(codec: FakeTokenCodec) -> None:
    grant = await issuer(codec).execute(request(scope="sse calculator"))
    assert grant.scopes == ("sse", "calculator")


async def test_a_subset_of_the_clients_scopes_can_be_requested(codec: FakeTokenCodec) -> None:
    grant = await issuer(codec).execute(request(scope="sse"))
    assert grant.scopes == ("sse",)
    assert codec.issued[grant.access_token].scopes == frozenset({"sse"})


async def test_duplicate_requested_scopes_collapse(codec: FakeTokenCodec) -> None:
    grant = await issuer(codec).execute(request(scope="sse calculator  sse calculator"))
    assert grant.scopes == ("sse", "calculator")


async def test_the_token_carries_lifetime_audience_and_a_fresh_token_id(
    codec: FakeTokenCodec,
) -> None:
    grant = await issuer(codec).execute(request(scope="calculator"))
    claims = codec.issued[grant.access_token]
    assert grant.expires_in == LIFETIME
    assert grant.token_type == "Bearer"
    assert claims.client_id == "alice"
    assert claims.audience == (AUDIENCE,)
    assert claims.issued_at == NOW
    assert claims.expires_at == NOW + LIFETIME
    assert claims.token_id == "jti-1"


async def test_every_token_gets_its_own_token_id(codec: FakeTokenCodec) -> None:
    use_case = issuer(codec)
    first = await use_case.execute(request())
    second = await use_case.execute(request("bob", "bob-secret"))
    ids = {codec.issued[grant.access_token].token_id for grant in (first, second)}
    assert ids == {"jti-1", "jti-2"}
    assert codec.issued[second.access_token].client_id == "bob"
