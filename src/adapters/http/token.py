"""``POST /token``: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4, §2.3.1, §5)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from urllib.parse import parse_qsl, unquote_plus

import msgspec
from litestar import asgi
from litestar.handlers import ASGIRouteHandler
from litestar.openapi.spec import OpenAPIType, Operation, PathItem, Schema
from litestar.types import Receive, Scope, Send

from src.adapters.http.errors import NO_STORE, OAUTH_OPT
from src.adapters.http.openapi import (
    CLIENT_FIELDS,
    form_body,
    written_problem,
    written_response,
)
from src.adapters.http.plain import headers_named, read_body, refuse_unless_post
from src.adapters.http.responses import JsonBody
from src.adapters.http.wire import TokenResponse
from src.application.client_auth import ClientCredentials
from src.application.errors import InvalidRequest
from src.application.issue_token import IssueToken, IssueTokenCommand, TokenGrant

FORM = "application/x-www-form-urlencoded"
MAX_FORM = 64 * 1024
OAUTH_ERROR = "OAuthError"
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


def read_form(content_type: str | None, body: bytes) -> Form:
    """Parse a form body strictly: right media type, UTF-8, no repeated parameter."""
    media_type = (content_type or "").split(";")[0].strip().lower()
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


def client_credentials(header: str | None, source: str | None, form: Form) -> ClientCredentials:
    """The client's id and secret, from HTTP Basic (``header``, the ``Authorization`` sent) or
    from the form (never both), and the address (``source``) they came from."""
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


def handlers(issue_token: Callable[[], IssueToken]) -> list[ASGIRouteHandler]:
    """``POST /token``, a plain ASGI route (see :mod:`src.adapters.http.plain`) answering errors
    the RFC 6749 way (its ``oauth_errors`` option), documented by :func:`path_items`."""

    @asgi("/token", is_mount=False, copy_scope=False, opt={OAUTH_OPT: True})
    async def token(scope: Scope, receive: Receive, send: Send) -> None:
        if not await refuse_unless_post(scope, receive, send):
            return
        headers = headers_named(scope, (b"content-type", b"authorization"))
        form = read_form(headers.get(b"content-type"), await read_body(receive, MAX_FORM))
        client = scope.get("client")
        credentials = client_credentials(
            headers.get(b"authorization"), client[0] if client else None, form
        )
        command = IssueTokenCommand(
            grant_type=form.get("grant_type"),
            credentials=credentials,
            scope=form.get("scope"),
            resources=form.all("resource"),
        )
        reply = token_response(await issue_token().execute(command))
        await reply(scope, receive, send)

    return [token]


TOKEN_RESPONSE = "TokenResponse"
SCHEMAS = {
    TOKEN_RESPONSE: Schema(
        title=TOKEN_RESPONSE,
        type=OpenAPIType.OBJECT,
        properties={
            "access_token": Schema(type=OpenAPIType.STRING),
            "token_type": Schema(type=OpenAPIType.STRING),
            "expires_in": Schema(type=OpenAPIType.INTEGER),
            "scope": Schema(type=OpenAPIType.STRING),
        },
        required=["access_token", "expires_in", "scope", "token_type"],
    )
}
"""The component schemas the token operation refers to (its errors' are the other OAuth
endpoints')."""


def path_items() -> dict[str, PathItem]:
    """``POST /token``, documented as :func:`handlers` serves it."""
    operation = Operation(
        tags=["OAuth 2.0"],
        summary="Get an access token (client credentials)",
        description=(
            "RFC 6749 §4.4 client-credentials grant. Send an "
            "`application/x-www-form-urlencoded` body with `grant_type=client_credentials`, "
            "optional `scope` (space-separated; default: all the client's scopes), optional "
            "`resource` (RFC 8707: where the token will be used; default: this server's API), "
            "and authenticate with HTTP Basic or with `client_id` and `client_secret` in the "
            "form. Errors follow RFC 6749 §5.2; too many attempts get 429 with `Retry-After`."
        ),
        operation_id="TokenToken",
        request_body=form_body(
            {
                "grant_type": "Must be `client_credentials`",
                "scope": "Space-separated scopes (default: all the client's)",
                "resource": "Where the token will be used (RFC 8707; repeatable)",
                **CLIENT_FIELDS,
            },
            ("grant_type",),
        ),
        responses={
            "200": written_response("An access token (no-store)", TOKEN_RESPONSE),
            "400": written_response("RFC 6749 §5.2 error", OAUTH_ERROR),
            "401": written_response("Client authentication failed", OAUTH_ERROR),
            "413": written_problem(f"The body is larger than {MAX_FORM} bytes"),
            "429": written_response(
                "Too many attempts (`slow_down`); see `Retry-After`", OAUTH_ERROR
            ),
        },
    )
    return {"/token": PathItem(post=operation)}
