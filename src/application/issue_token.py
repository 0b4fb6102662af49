"""Use case: issue an access token to a client that proves its credentials (RFC 6749 §4.4)."""

from __future__ import annotations

from dataclasses import dataclass

from src.application.errors import (
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from src.application.ports import AccessTokenClaims, ClientRegistry, Clock, IdSource, TokenCodec
from src.application.security import KNOWN_SCOPES

CLIENT_CREDENTIALS = "client_credentials"


@dataclass(frozen=True, slots=True, kw_only=True)
class IssueTokenCommand:
    """A token request, after the transport has extracted the client's credentials."""

    grant_type: str | None
    client_id: str | None
    client_secret: str | None
    scope: str | None = None


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
        - the client must exist, be enabled and present its secret (``invalid_client``);
        - requested scopes must be known and allowed for the client (``invalid_scope``);
          no requested scope means all the client's scopes;
        - the token lives ``lifetime`` seconds and is meant for ``audience``.
    """

    def __init__(
        self,
        *,
        clients: ClientRegistry,
        codec: TokenCodec,
        clock: Clock,
        ids: IdSource,
        lifetime: int,
        audience: str,
    ) -> None:
        self._clients = clients
        self._codec = codec
        self._clock = clock
        self._ids = ids
        self._lifetime = lifetime
        self._audience = audience

    async def execute(self, command: IssueTokenCommand) -> TokenGrant:
        """Authenticate the client and sign a token for the scopes it may have."""
        if command.grant_type is None:
            raise InvalidRequest("grant_type is required")
        if command.grant_type != CLIENT_CREDENTIALS:
            raise UnsupportedGrantType("only the client_credentials grant type is supported")
        if command.client_id is None or command.client_secret is None:
            raise InvalidClient("client authentication is required (HTTP Basic or the form)")
        client = await self._clients.verify(command.client_id, command.client_secret)
        if client is None or client.disabled:
            raise InvalidClient("client authentication failed")
        scopes = _granted_scopes(command.scope, client.scopes)
        now = self._clock.now()
        claims = AccessTokenClaims(
            client_id=client.client_id,
            scopes=frozenset(scopes),
            audience=(self._audience,),
            issued_at=now,
            expires_at=now + self._lifetime,
            token_id=self._ids.new_id(),
        )
        return TokenGrant(
            access_token=self._codec.encode(claims), expires_in=self._lifetime, scopes=scopes
        )


def _granted_scopes(requested: str | None, allowed: frozenset[str]) -> tuple[str, ...]:
    if not allowed:
        raise UnauthorizedClient("this client may not be issued any scope")
    wanted = tuple(dict.fromkeys((requested or "").split()))
    if not wanted:
        return tuple(sorted(allowed))
    unknown = sorted(set(wanted) - KNOWN_SCOPES)
    if unknown:
        raise InvalidScope(f"unknown scope: {' '.join(unknown)}")
    beyond = sorted(set(wanted) - allowed)
    if beyond:
        raise InvalidScope(f"this client may not request: {' '.join(beyond)}")
    return wanted
