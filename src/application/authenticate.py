"""Use case: turn a bearer token into the principal it speaks for."""

from __future__ import annotations

from dataclasses import dataclass

from src.application.errors import AuthenticationRequired, InvalidToken
from src.application.ports import RevocationList, TokenCodec
from src.application.security import Principal


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthenticateCommand:
    """A bearer token as presented, and the resource it is being used at."""

    token: str | None
    resource: str


class Authenticate:
    """Establishes who is calling; every transport gets its principal here.

    Rules:
        - no token at all is :class:`AuthenticationRequired`;
        - the token must verify (signature, issuer, expiry: the codec's job), be meant for the
          resource it is presented at, and not be revoked, else :class:`InvalidToken`.
    """

    def __init__(self, *, codec: TokenCodec, revocations: RevocationList) -> None:
        self._codec = codec
        self._revocations = revocations

    async def execute(self, command: AuthenticateCommand) -> Principal:
        """Verify the token and return its principal."""
        if not command.token:
            raise AuthenticationRequired("an access token is required")
        claims = self._codec.decode(command.token)
        if command.resource not in claims.audience:
            raise InvalidToken("the access token is not meant for this resource")
        if await self._revocations.is_revoked(claims.token_id):
            raise InvalidToken("the access token has been revoked")
        return Principal(
            client_id=claims.client_id,
            scopes=claims.scopes,
            token_id=claims.token_id,
            expires_at=claims.expires_at,
        )
