"""Use case: tell a client whether a token is active, and what it grants (RFC 7662)."""

from __future__ import annotations

from dataclasses import dataclass

from src.application.client_auth import ClientAuthenticator, ClientCredentials
from src.application.errors import ApplicationError, InvalidToken
from src.application.ports import (
    AccessTokenClaims,
    AuditEvent,
    AuditTrail,
    RevocationList,
    TokenCodec,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class IntrospectTokenCommand:
    """The token to introspect, and who asks."""

    credentials: ClientCredentials
    token: str


class IntrospectToken:
    """Introspects a client's own access token.

    Rules:
        - the client authenticates as for a token request;
        - an invalid, expired or revoked token is simply inactive (``None``);
        - a client sees only its own tokens as active: another client's token is inactive, so
          introspection cannot be used to probe tokens a client does not hold legitimately;
        - every introspection is audited.
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

    async def execute(self, command: IntrospectTokenCommand) -> AccessTokenClaims | None:
        """The token's claims if it is active for this client, else ``None``."""
        try:
            client = await self._authenticator.authenticate(command.credentials)
        except ApplicationError as refusal:
            claimed = await self._authenticator.audit_name(command.credentials)
            self._audit.record(_event(claimed, "refused", reason=type(refusal).__name__))
            raise
        client_id = client.client_id
        claims = await self._active(command.token)
        if claims is not None and claims.client_id != client.client_id:
            claims = None
        outcome = "active" if claims else "inactive"
        self._audit.record(_event(client_id, outcome, claims.token_id if claims else None))
        return claims

    async def _active(self, token: str) -> AccessTokenClaims | None:
        try:
            claims = self._codec.decode(token)
        except InvalidToken:
            return None
        return None if await self._revocations.is_revoked(claims.token_id) else claims


def _event(
    client_id: str | None, outcome: str, token_id: str | None = None, *, reason: str | None = None
) -> AuditEvent:
    return AuditEvent(
        action="introspect", outcome=outcome, client_id=client_id, token_id=token_id, reason=reason
    )
