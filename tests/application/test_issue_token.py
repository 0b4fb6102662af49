"""IssueToken: the client-credentials grant, every refusal, the claims of the token it signs,
its audiences (RFC 8707), and the audit line each request leaves."""

from __future__ import annotations

import hashlib

import pytest

from src.adapters.jwt.codec import JwtTokenCodec, KeyRing
from src.adapters.jwt.keys import static_hmac_key
from src.adapters.memory.clients import ClientSeed, MemoryClientStore
from src.application.client_auth import ClientAuthenticator, ClientCredentials
from src.application.errors import (
    ApplicationError,
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    RateLimited,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from src.application.issue_token import IssueToken, IssueTokenCommand
from src.application.ports import AuditEvent, ClientRegistry, RegisteredClient, TokenCodec
from src.application.security import Resources
from tests.application.fakes import (
    ALL_SCOPES,
    AUDIENCE,
    NOW,
    FakeAuditTrail,
    FakeClientRegistry,
    FakeClock,
    FakeRateLimiter,
    FakeTokenCodec,
    SequentialIds,
)

pytestmark = pytest.mark.anyio

LIFETIME = 900
DOCS = "https://calc.example/docs"
ALICE_SECRET = "alice-secret-7c1e"
SEEDS = (
    ClientSeed(client_id="alice", secret=ALICE_SECRET, scopes=ALL_SCOPES),
    ClientSeed(client_id="bob", secret="bob-secret", scopes=frozenset({"calculator"})),
    ClientSeed(client_id="nobody", secret="nobody-secret", scopes=frozenset()),
)


@pytest.fixture
def codec() -> FakeTokenCodec:
    return FakeTokenCodec()


@pytest.fixture
def audit() -> FakeAuditTrail:
    return FakeAuditTrail()


def issuer(
    codec: TokenCodec,
    clients: ClientRegistry | None = None,
    *,
    audit: FakeAuditTrail | None = None,
    limiter: FakeRateLimiter | None = None,
) -> IssueToken:
    authenticator = ClientAuthenticator(
        clients=clients or MemoryClientStore(SEEDS), limiter=limiter or FakeRateLimiter()
    )
    return IssueToken(
        authenticator=authenticator,
        codec=codec,
        clock=FakeClock(NOW),
        ids=SequentialIds("jti"),
        audit=audit or FakeAuditTrail(),
        lifetime=LIFETIME,
        resources=Resources.of(AUDIENCE, DOCS),
    )


# The defaults are alice's test credentials, as seeded above.
def request(
    client_id: str | None = "alice",
    secret: str | None = ALICE_SECRET,
    scope: str | None = None,
    grant_type: str | None = "client_credentials",
    resources: tuple[str, ...] = (),
) -> IssueTokenCommand:
    return IssueTokenCommand(
        grant_type=grant_type,
        credentials=ClientCredentials(
            client_id=client_id, client_secret=secret, source="192.0.2.1"
        ),
        scope=scope,
        resources=resources,
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


async def test_without_a_requested_resource_the_audience_is_the_default_resource(
    codec: FakeTokenCodec,
) -> None:
    grant = await issuer(codec).execute(request())
    assert codec.issued[grant.access_token].audience == (AUDIENCE,)


@pytest.mark.parametrize(
    "resource",
    [
        AUDIENCE,
        "HTTPS://Calc.Example/mcp/",
        "https://CALC.EXAMPLE/mcp",
        "https://calc.example/mcp//",
    ],
)
async def test_a_requested_resource_is_canonicalised_into_the_audience(
    codec: FakeTokenCodec, resource: str
) -> None:
    grant = await issuer(codec).execute(request(resources=(resource,)))
    assert codec.issued[grant.access_token].audience == ("https://calc.example/mcp",)


async def test_several_resources_give_several_audiences_in_request_order(
    codec: FakeTokenCodec,
) -> None:
    grant = await issuer(codec).execute(request(resources=(DOCS, "HTTPS://calc.example/mcp/")))
    assert codec.issued[grant.access_token].audience == (DOCS, AUDIENCE)


async def test_the_same_resource_named_twice_is_one_audience(codec: FakeTokenCodec) -> None:
    grant = await issuer(codec).execute(request(resources=(AUDIENCE, "HTTPS://Calc.Example/mcp/")))
    assert codec.issued[grant.access_token].audience == (AUDIENCE,)


@pytest.mark.parametrize(
    "resources",
    [
        ("https://elsewhere.example/mcp",),
        ("https://calc.example/MCP",),
        ("https://calc.example/mcp/tools",),
        ("https://calc.example:8443/mcp",),
        ("http://calc.example/mcp",),
        ("https://calc.example/mcp#tools",),
        ("/mcp",),
        ("urn:calc:mcp",),
        ("",),
        (AUDIENCE, "https://elsewhere.example/mcp"),
    ],
)
async def test_a_resource_not_served_here_is_an_invalid_target_and_signs_nothing(
    codec: FakeTokenCodec, resources: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidTarget):
        await issuer(codec).execute(request(resources=resources))
    assert codec.issued == {}


async def test_an_issued_token_is_audited_once_with_client_scopes_and_token_id(
    codec: FakeTokenCodec, audit: FakeAuditTrail
) -> None:
    await issuer(codec, audit=audit).execute(request(scope="sse"))
    assert audit.events == [
        AuditEvent(
            action="token", outcome="issued", client_id="alice", scopes=("sse",), token_id="jti-1"
        )
    ]


RATE_LIMITED = pytest.param(request(), RateLimited, id="rate-limited")
NOT_SERVED = pytest.param(
    request(resources=("https://elsewhere.example/",)), InvalidTarget, id="not-served"
)


@pytest.mark.parametrize(("command", "error"), [*REFUSALS, NOT_SERVED, RATE_LIMITED])
async def test_every_refusal_is_audited_once_with_the_client_and_the_reason(
    codec: FakeTokenCodec,
    audit: FakeAuditTrail,
    command: IssueTokenCommand,
    error: type[ApplicationError],
) -> None:
    limiter = FakeRateLimiter()
    if error is RateLimited:
        limiter.empty("client:alice")
    with pytest.raises(error):
        await issuer(codec, audit=audit, limiter=limiter).execute(command)
    [event] = audit.events
    assert (event.action, event.outcome) == ("token", "refused")
    claimed = command.credentials.client_id
    if claimed == "mallory":  # names no registered client: a fingerprint, never the text sent
        expected = "unregistered:" + hashlib.sha256(b"mallory").hexdigest()[:12]
        assert event.client_id == expected
    else:
        assert event.client_id == claimed
    assert event.reason == error.__name__
    assert event.token_id is None


async def test_the_audit_trail_never_holds_a_secret_or_a_token(audit: FakeAuditTrail) -> None:
    keys = KeyRing(lambda: [static_hmac_key(b"k" * 32)], algorithm="HS256")
    codec = JwtTokenCodec(keys=keys, issuer="https://calc.example", algorithms=("HS256",))
    use_case = issuer(codec, audit=audit)
    grant = await use_case.execute(request())
    guesses = [ALICE_SECRET + "x", "mallory-guess-0451"]
    for secret in guesses:
        with pytest.raises(InvalidClient):
            await use_case.execute(request(secret=secret))
    with pytest.raises(InvalidScope):
        await use_case.execute(request(scope="admin"))
    with pytest.raises(InvalidClient):
        await use_case.execute(request(client_id="mallory", secret=guesses[1]))
    assert len(audit.events) == 5
    recorded = repr(audit.events)
    for secret in [ALICE_SECRET, *guesses]:
        assert secret not in recorded
    assert grant.access_token not in recorded
    assert grant.access_token.rsplit(".", 1)[1] not in recorded
