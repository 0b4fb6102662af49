"""Bearer-token authentication (RFC 6750 §2.1): the header only, never the URL."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request

from src.adapters.http.errors import BearerRequestError
from src.application.authenticate import Authenticate, AuthenticateCommand
from src.application.security import Principal


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    """The bearer token from the ``Authorization`` header, if one was sent.

    Raises:
        BearerRequestError: a token was put in the query string, or the header is malformed.
    """
    if "access_token" in request.query_params:
        raise BearerRequestError("access tokens are accepted in the Authorization header only")
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    if not token or " " in token:
        raise BearerRequestError("the Authorization header must be 'Bearer <token>'")
    return token


class BearerAuth:
    """Provides the request's :class:`Principal` to handlers, through :class:`Authenticate`."""

    def __init__(self, *, authenticate: Callable[[], Authenticate], resource: str) -> None:
        self._authenticate = authenticate
        self._resource = resource

    async def principal(self, request: Request[Any, Any, Any]) -> Principal:
        """Authenticate the request's bearer token for this server's resource."""
        command = AuthenticateCommand(token=bearer_token(request), resource=self._resource)
        return await self._authenticate().execute(command)
