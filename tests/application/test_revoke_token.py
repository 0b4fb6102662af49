"""RevokeToken (RFC 7009): a client revokes its own tokens; anything else is harmless or refused."""

from __future__ import annotations

import pytest

from src.application.errors import InvalidClient, InvalidToken, RateLimited, UnauthorizedClient
from src.application.ports import AuditEvent
from src.application.revoke_token import RevokeTokenCommand
from tests.application.authorization import (
    SECRETS,
    AuthorizationServer,
    authorization_server,
    credentials,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def server() -> AuthorizationServer:
    return authorization_server()


def revocations_audited(server: AuthorizationServer) -> list[AuditEvent]:
    return [event for event in server.audit.events if event.action == "revoke"]


async def test_a_revoked_token_no_longer_authenticates(server: AuthorizationServer) -> None:
    token = await server.token("alice")
    assert (await server.principal(token)).client_id == "alice"
    await server.revoke.execute(RevokeTokenCommand(credentials=credentials("alice"), token=token))
    with pytest.raises(InvalidToken, match="revoked"):
        await server.principal(token)


async def test_revoking_one_token_leaves_the_clients_other_tokens_valid(
    server: AuthorizationServer,
) -> None:
    revoked, kept = await server.token("alice"), await server.token("alice")
    await server.revoke.execute(RevokeTokenCommand(credentials=credentials(), token=revoked))
    assert (await server.principal(kept)).client_id == "alice"


async def test_a_revocation_is_audited_with_the_client_and_token_id_but_not_the_token(
    server: AuthorizationServer,
) -> None:
    token = await server.token("alice")
    token_id = (await server.principal(token)).token_id
    await server.revoke.execute(RevokeTokenCommand(credentials=credentials(), token=token))
    assert revocations_audited(server) == [
        AuditEvent(action="revoke", outcome="revoked", client_id="alice", token_id=token_id)
    ]
    recorded = repr(server.audit.events)
    assert token not in recorded
    assert SECRETS["alice"] not in recorded


async def test_revoking_twice_is_fine(server: AuthorizationServer) -> None:
    token = await server.token("alice")
    for _ in range(2):
        await server.revoke.execute(RevokeTokenCommand(credentials=credentials(), token=token))
    with pytest.raises(InvalidToken):
        await server.principal(token)


@pytest.mark.parametrize("kind", ["garbage", "expired", "tampered", "empty"])
async def test_revoking_an_invalid_or_expired_token_succeeds_silently(
    server: AuthorizationServer, kind: str
) -> None:
    valid, other = await server.token("alice"), await server.token("alice")
    header, payload, _ = other.split(".")
    token = {
        "garbage": "not-a-token",
        "expired": server.expired_token("alice"),
        "tampered": f"{header}.{payload}.{valid.split('.')[2]}",
        "empty": "",
    }[kind]
    await server.revoke.execute(RevokeTokenCommand(credentials=credentials(), token=token))
    assert revocations_audited(server) == [
        AuditEvent(action="revoke", outcome="ignored", client_id="alice", reason="invalid_token")
    ]
    assert (await server.principal(valid)).client_id == "alice"


async def test_revoking_another_clients_token_is_refused_and_the_token_stays_valid(
    server: AuthorizationServer,
) -> None:
    alices = await server.token("alice")
    with pytest.raises(UnauthorizedClient):
        await server.revoke.execute(
            RevokeTokenCommand(credentials=credentials("bob"), token=alices)
        )
    assert (await server.principal(alices)).client_id == "alice"
    assert revocations_audited(server) == [
        AuditEvent(action="revoke", outcome="refused", client_id="bob", reason="UnauthorizedClient")
    ]


async def test_a_client_that_fails_to_authenticate_revokes_nothing(
    server: AuthorizationServer,
) -> None:
    token = await server.token("alice")
    wrong = credentials("alice", secret="a-guessed-secret")
    with pytest.raises(InvalidClient):
        await server.revoke.execute(RevokeTokenCommand(credentials=wrong, token=token))
    assert (await server.principal(token)).client_id == "alice"
    [event] = revocations_audited(server)
    assert (event.outcome, event.client_id, event.reason) == ("refused", "alice", "InvalidClient")
    assert "a-guessed-secret" not in repr(server.audit.events)


async def test_revocation_is_rate_limited_like_the_token_endpoint(
    server: AuthorizationServer,
) -> None:
    token = await server.token("alice")
    wrong = credentials("alice", secret="a-guessed-secret")
    with pytest.raises(RateLimited):  # noqa: PT012
        for _ in range(100):
            with pytest.raises(InvalidClient):
                await server.revoke.execute(RevokeTokenCommand(credentials=wrong, token=token))
    assert revocations_audited(server)[-1].reason == "RateLimited"
    assert (await server.principal(token)).client_id == "alice"
