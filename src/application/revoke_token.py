"""Use case: revoke an access token before it expires (RFC 7009)."""

from __future__ import annotations

from dataclasses import dataclass

from src.application.client_auth import ClientAuthenticator, ClientCredentials
from src.application.errors import ApplicationError, InvalidToken, UnauthorizedClient
from src.application.ports import AuditEvent, AuditTrail, RevocationList, TokenCodec


@dataclass(frozen=True, slots=True, kw_only=True)
class RevokeTokenCommand:
    """The token to revoke, and who asks."""

    credentials: ClientCredentials
    token: str


class RevokeToken:
    """Revokes a client's own access token.

    Rules:
        - the client authenticates as for a token request;
        - a token that is invalid or expired already is not an error (RFC 7009 §2.2);
        - a client may revoke only tokens issued to it (``unauthorized_client``);
        - a revoked token is denied until it would have expired; every revocation is audited.
    """

    def __init__(
        self,
        *,
        authenticator: ClientAuthenticator,
        codec: TokenCodec,
        revocations: RevocationList,
        audit: AuditTrail,
    ) -> None:
        self._authenticator = authenticator
        self._codec = codec
        self._revocations = revocations
        self._audit = audit

    async def execute(self, command: RevokeTokenCommand) -> None:
        """Revoke the token (or do nothing if it is not a valid token)."""
        client_id = None
        try:
            client = await self._authenticator.authenticate(command.credentials)
            client_id = client.client_id
            try:
                claims = self._codec.decode(command.token)
            except InvalidToken:
                self._audit.record(_event(client_id, "ignored", reason="invalid_token"))
                return
            if claims.client_id != client.client_id:
                raise UnauthorizedClient("a client may revoke only its own tokens")
            await self._revocations.revoke(claims.token_id, claims.expires_at)
        except ApplicationError as refusal:
            if client_id is None:  # not authenticated: as the caller named itself
                client_id = await self._authenticator.audit_name(command.credentials)
            self._audit.record(_event(client_id, "refused", reason=type(refusal).__name__))
            raise
        self._audit.record(_event(client_id, "revoked", token_id=claims.token_id))


def _event(
    client_id: str | None, outcome: str, *, reason: str | None = None, token_id: str | None = None
) -> AuditEvent:
    return AuditEvent(
        action="revoke", outcome=outcome, client_id=client_id, reason=reason, token_id=token_id
    )
