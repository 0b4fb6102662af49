"""``POST /token``: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4, §2.3.1, §5)."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import msgspec
from litestar import Request, post

from src.adapters.http.di import Injected
from src.adapters.http.errors import NO_STORE
from src.adapters.http.openapi import CLIENT_FIELDS, form_operation, token_responses
from src.adapters.http.responses import JsonBody
from src.adapters.http.wire import TokenResponse
from src.application.client_auth import ClientCredentials
from src.application.errors import InvalidRequest
from src.application.issue_token import IssueToken, IssueTokenCommand, TokenGrant

FORM = "application/x-www-form-urlencoded"
MAX_FIELDS = 32
REPEATABLE = frozenset({"resource"})  # RFC 8707 §2: several resources may be requested
NO_STORE_RAW = tuple((k.lower().encode(), v.encode()) for k, v in NO_STORE.items())


class Form:
    """A parsed form body; a parameter sent without a value counts as omitted (RFC 6749 §3.1)."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            if value:
                self._values.setdefault(name, []).append(value)
        for name, values in self._values.items():
            if len(values) > 1 and name not in REPEATABLE:
                raise InvalidRequest(f"parameter '{name}' is repeated")

    def get(self, name: str) -> str | None:
        """The parameter's value, if sent."""
        values = self._values.get(name)
        return values[0] if values else None

    def all(self, name: str) -> tuple[str, ...]:
        """Every value of a repeatable parameter."""
        return tuple(self._values.get(name, ()))

    def __contains__(self, name: object) -> bool:
        return name in self._values


def read_form(request: Request[Any, Any, Any], body: bytes) -> Form:
    """Parse a form body strictly: right media type, UTF-8, no repeated parameter."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != FORM:
        raise InvalidRequest(f"the request body must be {FORM}")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
            encoding="utf-8",
            errors="strict",  # a percent-escape that is not UTF-8 is refused, not replaced
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the request body is not a valid UTF-8 form") from None
    return Form(pairs)


def client_credentials(request: Request[Any, Any, Any], form: Form) -> ClientCredentials:
    """The client's id and secret, from HTTP Basic or from the form (never both), and address."""
    source = request.client.host if request.client else None
    header = request.headers.get("authorization")
    if header is None:
        return ClientCredentials(
            client_id=form.get("client_id"), client_secret=form.get("client_secret"), source=source
        )
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise InvalidRequest("client authentication must use the Basic scheme or the form")
    if "client_secret" in form:
        raise InvalidRequest("use one client authentication method, not Basic and the form")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidRequest("the Basic credentials are not valid base64 UTF-8") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise InvalidRequest("the Basic credentials must be 'client_id:client_secret'")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding
    client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    if form.get("client_id") not in (None, client_id):
        raise InvalidRequest("client_id in the form does not match the Basic credentials")
    return ClientCredentials(client_id=client_id, client_secret=secret, source=source)


def token_response(grant: TokenGrant) -> JsonBody:
    """A successful token response, never cached."""
    body = TokenResponse(
        access_token=grant.access_token,
        token_type=grant.token_type,
        expires_in=grant.expires_in,
        scope=" ".join(grant.scopes),
    )
    return JsonBody(msgspec.json.encode(body), headers=NO_STORE_RAW)


@post(
    "/token",
    status_code=200,
    tags=["OAuth 2.0"],
    summary="Get an access token (client credentials)",
    description=(
        "RFC 6749 §4.4 client-credentials grant. Send an `application/x-www-form-urlencoded` body "
        "with `grant_type=client_credentials`, optional `scope` (space-separated; default: all "
        "the client's scopes), optional `resource` (RFC 8707: where the token will be used; "
        "default: this server's API), and authenticate with HTTP Basic or with `client_id` and "
        "`client_secret` in the form. Errors follow RFC 6749 §5.2; too many attempts get 429 "
        "with `Retry-After`."
    ),
    request_max_body_size=64 * 1024,
    oauth_errors=True,
    responses=token_responses(),
    operation_class=form_operation(
        {
            "grant_type": "Must be `client_credentials`",
            "scope": "Space-separated scopes (default: all the client's)",
            "resource": "Where the token will be used (RFC 8707; repeatable)",
            **CLIENT_FIELDS,
        },
        ("grant_type",),
    ),
)
async def token(request: Request[Any, Any, Any], issue_token: Injected[IssueToken]) -> JsonBody:
    """Issue an access token."""
    form = read_form(request, await request.body())
    command = IssueTokenCommand(
        grant_type=form.get("grant_type"),
        credentials=client_credentials(request, form),
        scope=form.get("scope"),
        resources=form.all("resource"),
    )
    return token_response(await issue_token.execute(command))
