"""Use case: issue an access token to a client that proves its credentials (RFC 6749 §4.4)."""

from __future__ import annotations

from dataclasses import dataclass

from src.application.client_auth import ClientAuthenticator, ClientCredentials
from src.application.errors import (
    ApplicationError,
    InvalidRequest,
    InvalidScope,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from src.application.ports import (
    AccessTokenClaims,
    AuditEvent,
    AuditTrail,
    Clock,
    IdSource,
    TokenCodec,
)
from src.application.security import KNOWN_SCOPES, Resources

CLIENT_CREDENTIALS = "client_credentials"


@dataclass(frozen=True, slots=True, kw_only=True)
class IssueTokenCommand:
    """A token request, after the transport has extracted the client's credentials.

    Attributes:
        grant_type: the requested grant (``None``: missing).
        credentials: the client's id and secret, and the caller's address.
        scope: the requested scopes, space-separated (``None``: all the client's).
        resources: RFC 8707 resource indicators naming where the token will be used.
    """

    grant_type: str | None
    credentials: ClientCredentials
    scope: str | None = None
    resources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenGrant:
    """A successful token response (RFC 6749 §5.1)."""

    access_token: str
    expires_in: int
    scopes: tuple[str, ...]
    token_type: str = "Bearer"


class IssueToken:
    """Issues access tokens for the client-credentials grant.

    Rules:
        - ``grant_type`` is required (``invalid_request``), and only ``client_credentials`` is
          supported (``unsupported_grant_type``);
        - the client authenticates under rate limits (``invalid_client``, 429);
        - requested scopes must be known and allowed for the client (``invalid_scope``);
          no requested scope means all the client's scopes;
        - the audience is the requested resources, which must be served here (``invalid_target``),
          or this server's own resource;
        - the token lives ``lifetime`` seconds; every issue and refusal is audited.
    """

    def __init__(
        self,
        *,
        authenticator: ClientAuthenticator,
        codec: TokenCodec,
        clock: Clock,
        ids: IdSource,
        audit: AuditTrail,
        lifetime: int,
        resources: Resources,
    ) -> None:
        self._authenticator = authenticator
        self._codec = codec
        self._clock = clock
        self._ids = ids
        self._audit = audit
        self._lifetime = lifetime
        self._resources = resources

    async def execute(self, command: IssueTokenCommand) -> TokenGrant:
        """Authenticate the client and sign a token for the scopes it may have."""
        try:
            grant, token_id = await self._issue(command)
        except ApplicationError as refusal:
            claimed = await self._authenticator.audit_name(command.credentials)
            self._audit.record(_refusal(command, claimed, refusal))
            raise
        self._audit.record(
            AuditEvent(
                action="token",
                outcome="issued",
                client_id=command.credentials.client_id,
                scopes=grant.scopes,
                token_id=token_id,
            )
        )
        return grant

    async def _issue(self, command: IssueTokenCommand) -> tuple[TokenGrant, str]:
        if command.grant_type is None:
            raise InvalidRequest("grant_type is required")
        if command.grant_type != CLIENT_CREDENTIALS:
            raise UnsupportedGrantType("only the client_credentials grant type is supported")
        client = await self._authenticator.authenticate(command.credentials)
        scopes = _granted_scopes(command.scope, client.scopes)
        now = self._clock.now()
        claims = AccessTokenClaims(
            client_id=client.client_id,
            scopes=frozenset(scopes),
            audience=self._resources.audience(command.resources),
            issued_at=now,
            expires_at=now + self._lifetime,
            token_id=self._ids.new_id(),
        )
        token = self._codec.encode(claims)
        return TokenGrant(
            access_token=token, expires_in=self._lifetime, scopes=scopes
        ), claims.token_id


def _refusal(
    command: IssueTokenCommand, claimed: str | None, refusal: ApplicationError
) -> AuditEvent:
    return AuditEvent(
        action="token",
        outcome="refused",
        client_id=claimed,
        reason=type(refusal).__name__,
        details={"source": command.credentials.source or ""},
    )


def _granted_scopes(requested: str | None, allowed: frozenset[str]) -> tuple[str, ...]:
    if not allowed:
        raise UnauthorizedClient("this client may not be issued any scope")
    # RFC 6749 §3.3: scope tokens are separated by spaces, and by nothing else
    wanted = tuple(dict.fromkeys(name for name in (requested or "").split(" ") if name))
    if not wanted:
        return tuple(sorted(allowed))
    unknown = sorted(set(wanted) - KNOWN_SCOPES)
    if unknown:
        raise InvalidScope(f"unknown scope: {' '.join(unknown)}")
    beyond = sorted(set(wanted) - allowed)
    if beyond:
        raise InvalidScope(f"this client may not request: {' '.join(beyond)}")
    return wanted
