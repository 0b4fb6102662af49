"""Bearer-token authentication (RFC 6750 §2.1): the header only, never the URL.

A middleware rather than a handler dependency: every route is protected unless it opts out with
``exclude_from_auth=True``, and Litestar resolves two sibling dependencies in a task group, which
would cost more than the rest of a calculator request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware

from src.adapters.http.errors import BearerRequestError
from src.application.authenticate import Authenticate, AuthenticateCommand


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The bearer token from the ``Authorization`` header, if one was sent.

    Raises:
        BearerRequestError: a token was put in the query string, or the header is malformed.
    """
    scope = connection.scope
    if b"access_token" in scope["query_string"] and "access_token" in connection.query_params:
        raise BearerRequestError("access tokens are accepted in the Authorization header only")
    # the raw header list, not connection.headers: this runs on every request
    header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
    if header is None:
        return None
    scheme, _, token = header.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    if not token or " " in token:
        raise BearerRequestError("the Authorization header must be 'Bearer <token>'")
    return token


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    """Sets ``request.user`` to the caller's :class:`Principal`, via :class:`Authenticate`."""

    def __init__(
        self, app: Any, *, authenticate: Callable[[], Authenticate], resource: str, **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self._authenticate = authenticate
        self._resource = resource

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        """Authenticate the bearer token for this server's resource."""
        command = AuthenticateCommand(token=bearer_token(connection), resource=self._resource)
        principal = await self._authenticate().execute(command)
        return AuthenticationResult(user=principal, auth=None)


def bearer_auth(*, authenticate: Callable[[], Authenticate], resource: str) -> DefineMiddleware:
    """The authentication middleware, protecting every route but the documentation."""
    return DefineMiddleware(
        BearerAuthMiddleware, authenticate=authenticate, resource=resource, exclude=["^/schema"]
    )
