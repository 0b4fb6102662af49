"""Bearer-token authentication (RFC 6750 §2.1): the header only, never the URL.

An ASGI middleware on the router of protected routes, so a route is protected by where it is
registered, not by remembering a flag. Written as a plain ASGI callable rather than on Litestar's
authentication middleware: that one re-checks exclusions and builds a connection object on every
request, a tenth of a calculator request's time, and a route dependency would be resolved in a
task group beside the handler's own.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

from litestar.enums import ScopeType
from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from src.adapters.http.errors import BearerRequestError
from src.application.authenticate import Authenticate, AuthenticateCommand


def bearer_token(scope: Scope) -> str | None:
    """The bearer token from the ``Authorization`` header, if one was sent.

    Raises:
        BearerRequestError: a token was put in the query string, or the header is malformed.
    """
    query = scope["query_string"]
    if b"access_token" in query and any(k == "access_token" for k, _ in parse_qsl(query.decode())):
        raise BearerRequestError("access tokens are accepted in the Authorization header only")
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


class BearerAuth:
    """Sets ``scope["user"]`` (``request.user``) to the caller's :class:`Principal`."""

    def __init__(
        self, app: ASGIApp, *, authenticate: Callable[[], Authenticate], resource: str
    ) -> None:
        self._app = app
        self._authenticate = authenticate
        self._resource = resource

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate, then hand over to the route."""
        if scope["type"] == ScopeType.HTTP:
            command = AuthenticateCommand(token=bearer_token(scope), resource=self._resource)
            scope["user"] = await self._authenticate().execute(command)
        await self._app(scope, receive, send)


def bearer_auth(*, authenticate: Callable[[], Authenticate], resource: str) -> DefineMiddleware:
    """The authentication middleware for the protected router."""
    return DefineMiddleware(BearerAuth, authenticate=authenticate, resource=resource)
