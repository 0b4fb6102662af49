"""Bearer-token authentication (RFC 6750 §2.1): the header only, never the URL.

:class:`BearerPrincipal` turns a request's credential into the caller's principal, through the
one :class:`Authenticate` use case. :class:`BearerAuth` runs it as an ASGI middleware: on the
router of protected routes (a route is protected by where it is registered), and wrapped around
the plain ASGI route ``/mcp`` itself; the calculator routes call it first thing. Router
middleware would wrap each call of those hot routes in a second layer of exception handling.
Neither is Litestar's authentication middleware: that one re-checks exclusions and builds a
connection object on every request, a tenth of a calculator request's time.

One credential may come in a URL, because it is not a token: ``GET /events`` accepts a stream
ticket (short-lived, single-use) in its query, since a browser's ``EventSource`` sends no header.
A ticket sent anywhere else is refused, not ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from urllib.parse import parse_qsl

from litestar.enums import ScopeType
from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from src.adapters.http.errors import CHALLENGE, BearerRequestError
from src.application.authenticate import Authenticate, AuthenticateCommand
from src.application.redeem_stream_ticket import RedeemStreamTicket, RedeemStreamTicketCommand
from src.application.security import Principal

TICKET_PATH = "/events"


T = TypeVar("T")


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


def stream_ticket(scope: Scope) -> str | None:
    """The stream ticket in the query string of ``GET /events``, if one was sent.

    A ticket, unlike a token, may travel in a URL: it opens one stream, once, within seconds.

    Raises:
        BearerRequestError: a ticket sent to another route, twice, or beside a header.
    """
    query = scope["query_string"]
    if b"ticket" not in query:
        return None
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    tickets = [value for name, value in pairs if name == "ticket"]
    if not tickets:
        return None
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):  # served under a prefix (a proxy's --root-path)
        path = path[len(root) :]
    if scope.get("method") != "GET" or path != TICKET_PATH:
        raise BearerRequestError("a ticket is accepted by GET /events only")
    if len(tickets) > 1:
        raise BearerRequestError("send one ticket")
    if any(name == b"authorization" for name, _ in scope["headers"]):
        raise BearerRequestError("send a ticket or an Authorization header, not both")
    return tickets[0]


class BearerPrincipal:
    """The caller's :class:`Principal`, from a request's bearer token (or stream ticket).

    Args:
        authenticate: the use case that verifies a token.
        resource: this route's resource URL, the audience its tokens must carry.
        redeem_ticket: with it, ``GET /events`` also accepts a stream ticket.
    """

    __slots__ = ("_authenticate", "_redeem_ticket", "_resource")

    def __init__(
        self,
        *,
        authenticate: Callable[[], Authenticate],
        resource: str,
        redeem_ticket: Callable[[], RedeemStreamTicket] | None = None,
    ) -> None:
        self._authenticate = authenticate
        self._resource = resource
        self._redeem_ticket = redeem_ticket

    async def __call__(self, scope: Scope) -> Principal:
        """Authenticate the request.

        Raises:
            BearerRequestError: a malformed header, or a token or ticket where none may be.
            ApplicationError: no credential, or one that does not verify.
        """
        # in a frame of its own: nothing here (the token, the command) stays referenced by the
        # caller's frame while a long response (an event stream) runs
        ticket = stream_ticket(scope)  # refuses a ticket sent anywhere but GET /events
        if ticket is not None:
            if self._redeem_ticket is None:
                raise BearerRequestError("a ticket is accepted by GET /events only")
            redeem = RedeemStreamTicketCommand(ticket=ticket, resource=self._resource)
            return await self._redeem_ticket().execute(redeem)
        command = AuthenticateCommand(token=bearer_token(scope), resource=self._resource)
        return await self._authenticate().execute(command)


class BearerAuth:
    """Sets ``scope["user"]`` (``request.user``) to the caller's :class:`Principal`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        authenticate: Callable[[], Authenticate],
        resource: str,
        challenge: dict[str, str] | None = None,
        redeem_ticket: Callable[[], RedeemStreamTicket] | None = None,
    ) -> None:
        self._app = app
        self._principal = BearerPrincipal(
            authenticate=authenticate, resource=resource, redeem_ticket=redeem_ticket
        )
        self._challenge = challenge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate, then hand over to the route."""
        if scope["type"] == ScopeType.HTTP:
            if self._challenge is not None:  # extra challenge parameters (MCP: RFC 9728)
                scope[CHALLENGE] = self._challenge  # type: ignore[literal-required]
            scope["user"] = await self._principal(scope)
        await self._app(scope, receive, send)


def bearer_auth(
    *,
    authenticate: Callable[[], Authenticate],
    resource: str,
    challenge: dict[str, str] | None = None,
    redeem_ticket: Callable[[], RedeemStreamTicket] | None = None,
) -> DefineMiddleware:
    """The authentication middleware for a protected router serving ``resource``.

    With ``redeem_ticket``, ``GET /events`` also accepts a stream ticket instead of a token.
    """
    # Litestar deep-copies a router, middleware arguments included, when it registers it; a
    # container provider would be copied with its whole graph (its own revocation list!). A
    # function is not copied, so the router keeps calling the container's own use cases.
    return DefineMiddleware(
        BearerAuth,
        authenticate=_uncopied(authenticate),
        resource=resource,
        challenge=challenge,
        redeem_ticket=_uncopied(redeem_ticket) if redeem_ticket is not None else None,
    )


def _uncopied(factory: Callable[[], T]) -> Callable[[], T]:
    """``factory`` behind a plain function, which ``copy.deepcopy`` leaves as it is."""

    def call() -> T:
        return factory()

    return call
