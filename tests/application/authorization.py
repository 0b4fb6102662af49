"""An authorization server for use-case tests: the real token use cases on in-memory adapters.

Tokens are real HS256 JWTs stamped with the real time, so expiry is the codec's own check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from src.adapters.jwt.codec import JwtTokenCodec, KeyRing
from src.adapters.jwt.keys import static_hmac_key
from src.adapters.memory.clients import ClientSeed, MemoryClientStore
from src.adapters.memory.rate_limits import MemoryRateLimiter
from src.adapters.memory.revocations import MemoryRevocationList
from src.adapters.system import SecretsIdSource, SystemClock
from src.application.authenticate import Authenticate, AuthenticateCommand
from src.application.client_auth import ClientAuthenticator, ClientCredentials
from src.application.introspect_token import IntrospectToken
from src.application.issue_token import IssueToken, IssueTokenCommand
from src.application.ports import AccessTokenClaims
from src.application.revoke_token import RevokeToken
from src.application.security import Principal, Resources
from tests.application.fakes import ALL_SCOPES, AUDIENCE, FakeAuditTrail

LIFETIME = 300
SECRETS = {"alice": "alice-secret-3d8a51", "bob": "bob-secret-c04e77"}


def credentials(client_id: str = "alice", secret: str | None = None) -> ClientCredentials:
    """The client's own credentials, unless ``secret`` says otherwise."""
    return ClientCredentials(
        client_id=client_id, client_secret=secret or SECRETS[client_id], source="192.0.2.9"
    )


@dataclass
class AuthorizationServer:
    """The use cases sharing one codec, revocation list and audit trail."""

    codec: JwtTokenCodec
    revocations: MemoryRevocationList
    audit: FakeAuditTrail
    issue: IssueToken
    revoke: RevokeToken
    introspect: IntrospectToken
    authenticate: Authenticate

    async def token(self, client_id: str = "alice") -> str:
        """A fresh access token for ``client_id``."""
        grant = await self.issue.execute(
            IssueTokenCommand(grant_type="client_credentials", credentials=credentials(client_id))
        )
        return grant.access_token

    def expired_token(self, client_id: str = "alice") -> str:
        """A token for ``client_id``, correctly signed, that expired a minute ago."""
        now = time.time()
        return self.codec.encode(
            AccessTokenClaims(
                client_id=client_id,
                scopes=ALL_SCOPES,
                audience=(AUDIENCE,),
                issued_at=now - LIFETIME - 60,
                expires_at=now - 60,
                token_id=f"expired-{client_id}",
            )
        )

    async def principal(self, token: str) -> Principal:
        """Who ``token`` speaks for at the MCP endpoint (or the refusal)."""
        return await self.authenticate.execute(AuthenticateCommand(token=token, resource=AUDIENCE))


def authorization_server() -> AuthorizationServer:
    """Alice (every scope) and Bob (calculator), behind rate limits that a test may exhaust."""
    clients = MemoryClientStore(
        [
            ClientSeed(client_id="alice", secret=SECRETS["alice"], scopes=ALL_SCOPES),
            ClientSeed(client_id="bob", secret=SECRETS["bob"], scopes=frozenset({"calculator"})),
        ]
    )
    authenticator = ClientAuthenticator(
        clients=clients, limiter=MemoryRateLimiter(capacity=50, rate=0.1)
    )
    keys = KeyRing(
        lambda: [static_hmac_key(b"an authorization test secret, 32+ bytes")], algorithm="HS256"
    )
    codec = JwtTokenCodec(keys=keys, issuer="https://calc.example", algorithms=("HS256",))
    revocations, audit = MemoryRevocationList(), FakeAuditTrail()
    return AuthorizationServer(
        codec=codec,
        revocations=revocations,
        audit=audit,
        issue=IssueToken(
            authenticator=authenticator,
            codec=codec,
            clock=SystemClock(),
            ids=SecretsIdSource(),
            audit=audit,
            lifetime=LIFETIME,
            resources=Resources.of(AUDIENCE),
        ),
        revoke=RevokeToken(
            authenticator=authenticator, codec=codec, revocations=revocations, audit=audit
        ),
        introspect=IntrospectToken(
            authenticator=authenticator, codec=codec, revocations=revocations, audit=audit
        ),
        authenticate=Authenticate(codec=codec, revocations=revocations),
    )
