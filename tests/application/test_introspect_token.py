"""IntrospectToken (RFC 7662): a client learns what its own active tokens grant, nothing more."""

from __future__ import annotations

import time

import pytest

from src.application.errors import InvalidClient
from src.application.introspect_token import IntrospectTokenCommand
from src.application.ports import AuditEvent
from src.application.revoke_token import RevokeTokenCommand
from tests.application.authorization import (
    LIFETIME,
    SECRETS,
    AuthorizationServer,
    authorization_server,
    credentials,
)
from tests.application.fakes import ALL_SCOPES, AUDIENCE

pytestmark = pytest.mark.anyio


@pytest.fixture
def server() -> AuthorizationServer:
    return authorization_server()


def introspections_audited(server: AuthorizationServer) -> list[AuditEvent]:
    return [event for event in server.audit.events if event.action == "introspect"]


async def test_an_own_active_token_yields_its_claims(server: AuthorizationServer) -> None:
    token = await server.token("alice")
    claims = await server.introspect.execute(
        IntrospectTokenCommand(credentials=credentials("alice"), token=token)
    )
    assert claims is not None
    principal = await server.principal(token)
    assert (claims.client_id, claims.scopes, claims.audience) == ("alice", ALL_SCOPES, (AUDIENCE,))
    assert (claims.token_id, claims.expires_at) == (principal.token_id, principal.expires_at)
    assert 0 < claims.expires_at - time.time() <= LIFETIME
    assert introspections_audited(server) == [
        AuditEvent(
            action="introspect", outcome="active", client_id="alice", token_id=claims.token_id
        )
    ]


async def test_a_revoked_token_is_inactive(server: AuthorizationServer) -> None:
    token = await server.token("alice")
    await server.revoke.execute(RevokeTokenCommand(credentials=credentials(), token=token))
    assert (
        await server.introspect.execute(
            IntrospectTokenCommand(credentials=credentials(), token=token)
        )
        is None
    )


@pytest.mark.parametrize("kind", ["expired", "garbage", "empty", "tampered"])
async def test_an_invalid_token_is_inactive(server: AuthorizationServer, kind: str) -> None:
    valid = await server.token("alice")
    header, _, signature = valid.split(".")
    _, payload, _ = (await server.token("alice")).split(".")
    token = {
        "expired": server.expired_token("alice"),
        "garbage": "not-a-token",
        "empty": "",
        "tampered": f"{header}.{payload}.{signature}",
    }[kind]
    claims = await server.introspect.execute(
        IntrospectTokenCommand(credentials=credentials(), token=token)
    )
    assert claims is None
    assert introspections_audited(server) == [
        AuditEvent(action="introspect", outcome="inactive", client_id="alice")
    ]


async def test_another_clients_token_is_inactive_and_its_id_is_not_audited(
    server: AuthorizationServer,
) -> None:
    alices = await server.token("alice")
    claims = await server.introspect.execute(
        IntrospectTokenCommand(credentials=credentials("bob"), token=alices)
    )
    assert claims is None
    assert introspections_audited(server) == [
        AuditEvent(action="introspect", outcome="inactive", client_id="bob")
    ]
    assert (await server.principal(alices)).client_id == "alice"


async def test_a_client_that_fails_to_authenticate_is_refused_and_audited(
    server: AuthorizationServer,
) -> None:
    token = await server.token("alice")
    with pytest.raises(InvalidClient):
        await server.introspect.execute(
            IntrospectTokenCommand(credentials=credentials("bob", "a-guessed-secret"), token=token)
        )
    assert introspections_audited(server) == [
        AuditEvent(action="introspect", outcome="refused", client_id="bob", reason="InvalidClient")
    ]


async def test_the_audit_trail_never_holds_the_token_or_a_secret(
    server: AuthorizationServer,
) -> None:
    token = await server.token("alice")
    await server.introspect.execute(IntrospectTokenCommand(credentials=credentials(), token=token))
    with pytest.raises(InvalidClient):
        await server.introspect.execute(
            IntrospectTokenCommand(credentials=credentials("alice", "guess-7781"), token=token)
        )
    recorded = repr(server.audit.events)
    for secret in [token, token.split(".")[2], SECRETS["alice"], "guess-7781"]:
        assert secret not in recorded
