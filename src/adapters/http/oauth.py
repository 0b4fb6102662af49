"""The authorization server's other endpoints: revocation (RFC 7009), introspection (RFC 7662),
metadata (RFC 8414), the JWK Set, and an ``/authorize`` that explains it is not offered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request, get, post

from src.adapters.http.di import Injected
from src.adapters.http.openapi import (
    CLIENT_FIELDS,
    form_operation,
    oauth_responses,
    response_spec,
)
from src.adapters.http.responses import JsonBody
from src.adapters.http.token import NO_STORE_RAW, Form, client_credentials, read_form
from src.application.client_auth import ClientCredentials
from src.application.errors import InvalidRequest
from src.application.introspect_token import IntrospectToken, IntrospectTokenCommand
from src.application.ports import AccessTokenClaims
from src.application.revoke_token import RevokeToken, RevokeTokenCommand

FORM_ROUTE: dict[str, Any] = {
    "status_code": 200,
    "tags": ["OAuth 2.0"],
    "request_max_body_size": 64 * 1024,
    "oauth_errors": True,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerMetadata:
    """Where this authorization server lives (public URLs, as clients must use them)."""

    issuer: str
    base_url: str
    scopes: tuple[str, ...]


class Introspection(msgspec.Struct, omit_defaults=True):
    """An RFC 7662 §2.2 introspection response."""

    active: bool
    scope: str | None = None
    client_id: str | None = None
    token_type: str | None = None
    exp: int | None = None
    iat: int | None = None
    nbf: int | None = None
    sub: str | None = None
    aud: list[str] | None = None
    iss: str | None = None
    jti: str | None = None


def _introspection(claims: AccessTokenClaims | None, issuer: str) -> Introspection:
    if claims is None:
        return Introspection(active=False)
    return Introspection(
        active=True,
        scope=" ".join(sorted(claims.scopes)),
        client_id=claims.client_id,
        token_type="Bearer",
        exp=int(claims.expires_at),
        iat=int(claims.issued_at),
        nbf=int(claims.issued_at),
        sub=claims.client_id,
        aud=list(claims.audience),
        iss=issuer,
        jti=claims.token_id,
    )


def _credentials(request: Request[Any, Any, Any], form: Form) -> ClientCredentials:
    source = request.client.host if request.client else None
    return client_credentials(request.headers.get("authorization"), source, form)


def _token_parameter(form: Any) -> str:
    token: str | None = form.get("token")
    if token is None:
        raise InvalidRequest("token is required")
    return token


@post(
    "/revoke",
    summary="Revoke an access token (RFC 7009)",
    description=(
        "Form body `token=...` (`token_type_hint` is accepted and ignored), with client "
        "authentication as for `/token`. Answers 200 whether or not the token was valid; a "
        "revoked token is refused everywhere until it would have expired."
    ),
    responses=oauth_responses(dict[str, Any], "Done (or the token was not valid anyway)"),
    operation_class=form_operation(
        {"token": "The token", "token_type_hint": "Ignored", **CLIENT_FIELDS}, ("token",)
    ),
    **FORM_ROUTE,
)
async def revoke(request: Request[Any, Any, Any], revoke_token: Injected[RevokeToken]) -> JsonBody:
    """Revoke a token."""
    form = read_form(request.headers.get("content-type"), await request.body())
    command = RevokeTokenCommand(
        credentials=_credentials(request, form), token=_token_parameter(form)
    )
    await revoke_token.execute(command)
    return JsonBody(b"{}", headers=NO_STORE_RAW)


@post(
    "/introspect",
    summary="Introspect an access token (RFC 7662)",
    description=(
        "Form body `token=...`, with client authentication as for `/token`. A client sees its "
        'own valid tokens as active; anything else is `{"active": false}`.'
    ),
    responses=oauth_responses(Introspection, "Whether the token is active, and its claims"),
    operation_class=form_operation({"token": "The token", **CLIENT_FIELDS}, ("token",)),
    **FORM_ROUTE,
)
async def introspect(
    request: Request[Any, Any, Any],
    introspect_token: Injected[IntrospectToken],
    metadata: Injected[ServerMetadata],
) -> JsonBody:
    """Introspect a token."""
    form = read_form(request.headers.get("content-type"), await request.body())
    command = IntrospectTokenCommand(
        credentials=_credentials(request, form), token=_token_parameter(form)
    )
    claims = await introspect_token.execute(command)
    body = msgspec.json.encode(_introspection(claims, metadata.issuer))
    return JsonBody(body, headers=NO_STORE_RAW)


@get(
    "/.well-known/oauth-authorization-server",
    tags=["OAuth 2.0"],
    summary="Authorization server metadata (RFC 8414)",
    sync_to_thread=False,
    responses={200: response_spec(dict[str, Any], "The metadata document")},
)
def authorization_server_metadata(metadata: Injected[ServerMetadata]) -> dict[str, Any]:
    """The authorization server's metadata."""
    base = metadata.base_url
    return {
        "issuer": metadata.issuer,
        "token_endpoint": f"{base}/token",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        # Only client credentials are offered; clients such as the official MCP SDK refuse
        # metadata without an authorization endpoint, so one is named that explains this.
        "authorization_endpoint": f"{base}/authorize",
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": list(metadata.scopes),
        "revocation_endpoint": f"{base}/revoke",
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "introspection_endpoint": f"{base}/introspect",
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
        ],
        "service_documentation": f"{base}/docs",
    }


@get(
    "/.well-known/jwks.json",
    tags=["OAuth 2.0"],
    summary="The public keys that verify access tokens (RFC 7517 JWK Set)",
    sync_to_thread=False,
    responses={200: response_spec(dict[str, Any], "The JWK Set")},
)
def jwks(public_keys: Injected[list[dict[str, Any]]]) -> dict[str, Any]:
    """The JWK Set."""
    return {"keys": public_keys}


@get("/authorize", include_in_schema=False, sync_to_thread=False)
def authorize() -> JsonBody:
    """Not offered: this server issues tokens by client credentials only."""
    body = msgspec.json.encode(
        {
            "error": "unsupported_response_type",
            "error_description": "tokens are issued by the client_credentials grant at /token only",
        }
    )
    return JsonBody(body, status=400, headers=NO_STORE_RAW)


handlers = [revoke, introspect, authorization_server_metadata, jwks, authorize]
