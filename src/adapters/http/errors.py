"""How every refusal becomes an HTTP response: one table per kind of error.

Domain refusals are RFC 9457 problem details; bearer-token problems carry an RFC 6750
``WWW-Authenticate`` challenge; token-endpoint errors are RFC 6749 §5.2 JSON, never cached.
"""

from __future__ import annotations

import logging
import math
from http import HTTPStatus
from typing import Any, cast

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from src.application.errors import (
    ApplicationError,
    AuthenticationRequired,
    ClientExists,
    InsufficientScope,
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
    InvalidTicket,
    InvalidToken,
    RateLimited,
    ServiceUnavailable,
    StreamEnded,
    TooManyStreams,
    UnauthorizedClient,
    UnknownClient,
    UnsupportedGrantType,
)
from src.domain.errors import (
    DivisionByZero,
    DomainError,
    InvalidMessage,
    InvalidOperand,
    OperandOutOfRange,
    UnknownEventType,
    UnknownOperation,
)

log = logging.getLogger("calcmcp.http")
REALM = "calcmcp"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

# status, problem slug, title
DOMAIN_ERRORS: dict[type[DomainError], tuple[int, str, str]] = {
    InvalidOperand: (400, "invalid-operand", "Invalid operand"),
    OperandOutOfRange: (400, "operand-out-of-range", "Operand out of range"),
    DivisionByZero: (400, "division-by-zero", "Division by zero"),
    UnknownOperation: (404, "unknown-operation", "Unknown operation"),
    InvalidMessage: (400, "invalid-message", "Invalid message"),
    UnknownEventType: (400, "unknown-event-type", "Unknown event type"),
}

# status, RFC 6749 §5.2 error code
OAUTH_ERRORS: dict[type[ApplicationError], tuple[int, str]] = {
    InvalidRequest: (400, "invalid_request"),
    InvalidClient: (401, "invalid_client"),
    InvalidScope: (400, "invalid_scope"),
    UnsupportedGrantType: (400, "unsupported_grant_type"),
    UnauthorizedClient: (400, "unauthorized_client"),
    InvalidTarget: (400, "invalid_target"),  # RFC 8707 §2
}

# status, RFC 6750 §3.1 error code (None: no error, the request simply lacked a token)
BEARER_ERRORS: dict[type[ApplicationError], tuple[int, str | None]] = {
    AuthenticationRequired: (401, None),
    InvalidToken: (401, "invalid_token"),
    InvalidTicket: (401, "invalid_token"),  # a stream ticket stands in for the token
    InsufficientScope: (403, "insufficient_scope"),
}

# status, problem slug. StreamEnded is raised only inside a stream, which reports it itself, and
# the client-administration errors only on the command line; they are mapped for completeness.
OTHER_ERRORS: dict[type[ApplicationError], tuple[int, str]] = {
    RateLimited: (429, "rate-limited"),
    TooManyStreams: (429, "too-many-streams"),
    StreamEnded: (503, "stream-ended"),
    UnknownClient: (404, "unknown-client"),
    ClientExists: (409, "client-exists"),
    ServiceUnavailable: (503, "service-unavailable"),  # with Retry-After
}
LIMIT = "calcmcp.limit"
"""Scope key: which rate limit refused the request (``client_auth``, ``streams_per_client``,
``streams_total``), for the metrics."""
OAUTH_OPT = "oauth_errors"
"""Route option: this route answers refusals in RFC 6749 §5.2 form (the token endpoints)."""


class BearerRequestError(Exception):
    """A malformed bearer request (RFC 6750 ``invalid_request``), e.g. a token in the URL."""


class Problem(msgspec.Struct, omit_defaults=True):
    """An RFC 9457 problem details body."""

    type: str
    title: str
    status: int
    detail: str | None = None


class OAuthError(msgspec.Struct, omit_defaults=True):
    """An RFC 6749 §5.2 error body."""

    error: str
    error_description: str | None = None


def problem(
    status: int, title: str, detail: str | None, *, slug: str | None = None, headers: Any = None
) -> Response[bytes]:
    """A problem-details response."""
    kind = f"urn:calcmcp:problem:{slug}" if slug else "about:blank"
    body = msgspec.json.encode(Problem(type=kind, title=title, status=status, detail=detail))
    return Response(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def _quoted(text: str) -> str:
    # RFC 6750 §3: error_description excludes '"' and '\\' and non-ASCII
    return "".join(c for c in text if 0x20 <= ord(c) <= 0x7E and c not in '"\\')


CHALLENGE = "calcmcp.challenge"
"""Scope key: extra ``WWW-Authenticate`` parameters of the route (e.g. RFC 9728 metadata)."""


def bearer_challenge(
    code: str | None,
    description: str,
    scope: str | None = None,
    extra: dict[str, str] | None = None,
) -> str:
    """The ``WWW-Authenticate`` value for a bearer refusal.

    ``extra`` adds parameters (``resource_metadata``, and a ``scope`` used when the refusal
    itself names none).
    """
    parts = [f'Bearer realm="{REALM}"']
    if code is not None:
        parts.append(f'error="{code}"')
        parts.append(f'error_description="{_quoted(description)}"')
    extra = extra or {}
    scope = scope or extra.get("scope")
    if scope is not None:
        parts.append(f'scope="{scope}"')
    if "resource_metadata" in extra:
        parts.append(f'resource_metadata="{extra["resource_metadata"]}"')
    return ", ".join(parts)


def on_domain_error(_: Request[Any, Any, Any], exc: DomainError) -> Response[bytes]:
    """A domain refusal: 400 (or 404) problem details."""
    status, slug, title = DOMAIN_ERRORS.get(type(exc), (400, "invalid-input", "Invalid input"))
    return problem(status, title, str(exc), slug=slug)


def on_application_error(request: Request[Any, Any, Any], exc: ApplicationError) -> Response[bytes]:
    """An application refusal: an OAuth error, a bearer challenge or a problem."""
    if isinstance(exc, RateLimited):
        return _rate_limited(request, exc)
    if type(exc) in OAUTH_ERRORS:
        status, code = OAUTH_ERRORS[type(exc)]
        headers = dict(NO_STORE)
        if status == 401:
            headers["WWW-Authenticate"] = f'Basic realm="{REALM}"'
        body = msgspec.json.encode(OAuthError(error=code, error_description=str(exc)))
        return Response(body, status_code=status, media_type="application/json", headers=headers)
    if type(exc) in BEARER_ERRORS:
        status, bearer_code = BEARER_ERRORS[type(exc)]
        scope = exc.scope if isinstance(exc, InsufficientScope) else None
        challenge = bearer_challenge(bearer_code, str(exc), scope, _challenge_extra(request))
        title = "Forbidden" if status == 403 else "Unauthorized"
        return problem(status, title, str(exc), headers={"WWW-Authenticate": challenge})
    status, slug = OTHER_ERRORS.get(type(exc), (400, "refused"))
    if isinstance(exc, ServiceUnavailable):  # tell the client when to come back
        retry = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
        return problem(status, "Request refused", str(exc), slug=slug, headers=retry)
    return problem(status, "Request refused", str(exc), slug=slug)


def _rate_limited(request: Request[Any, Any, Any], exc: RateLimited) -> Response[bytes]:
    cast("dict[str, Any]", request.scope)[LIMIT] = _limit(exc)  # counted by :mod:`observe`
    headers = {"Retry-After": str(max(1, math.ceil(exc.retry_after)))}
    if request.route_handler.opt.get(OAUTH_OPT):
        body = msgspec.json.encode(OAuthError(error="slow_down", error_description=str(exc)))
        headers.update(NO_STORE)
        return Response(body, status_code=429, media_type="application/json", headers=headers)
    _, slug = OTHER_ERRORS.get(type(exc), OTHER_ERRORS[RateLimited])
    return problem(429, "Too Many Requests", str(exc), slug=slug, headers=headers)


def _limit(exc: RateLimited) -> str:
    """Which limit refused: the client-authentication buckets, or a stream limit."""
    if isinstance(exc, TooManyStreams):
        return "streams_per_client" if exc.per_client else "streams_total"
    return "client_auth"


def _challenge_extra(request: Request[Any, Any, Any]) -> dict[str, str] | None:
    return cast("dict[str, str] | None", cast("dict[str, Any]", request.scope).get(CHALLENGE))


def on_bearer_request_error(
    request: Request[Any, Any, Any], exc: BearerRequestError
) -> Response[bytes]:
    """A malformed bearer request: 400 with an ``invalid_request`` challenge."""
    challenge = bearer_challenge("invalid_request", str(exc), extra=_challenge_extra(request))
    return problem(400, "Bad Request", str(exc), headers={"WWW-Authenticate": challenge})


def on_http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[bytes]:
    """Litestar's own refusals (404, 405, 413, ...) as problem details, without echoing input."""
    detail = exc.detail
    if isinstance(exc, ValidationException):
        detail = "the request's parameters or body are not valid"
    headers = dict(exc.headers or {})
    return problem(exc.status_code, _title(exc.status_code), detail, headers=headers or None)


def on_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[bytes]:
    """Anything else: a 500 that reveals nothing, logged with its traceback."""
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "Internal Server Error", "the server could not complete the request")


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    DomainError: on_domain_error,
    ApplicationError: on_application_error,
    BearerRequestError: on_bearer_request_error,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}
