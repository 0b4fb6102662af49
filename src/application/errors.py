"""Refusals raised by use cases; every message is safe to show the client."""

from __future__ import annotations

import math


class ApplicationError(Exception):
    """Base of every refusal a use case makes."""


class AuthenticationRequired(ApplicationError):
    """No access token was presented."""


class InvalidToken(ApplicationError):
    """The access token is malformed, forged, expired, revoked or meant for another resource."""


class InsufficientScope(ApplicationError):
    """The token is valid but lacks the scope the operation needs."""

    def __init__(self, scope: str) -> None:
        super().__init__(f"this operation needs the '{scope}' scope")
        self.scope = scope


class InvalidRequest(ApplicationError):
    """A token request is missing a parameter, repeats one, or is otherwise malformed."""


class InvalidClient(ApplicationError):
    """Client authentication failed: unknown client, wrong secret, or disabled client."""


class InvalidScope(ApplicationError):
    """The requested scope is unknown or beyond what the client may ask for."""


class UnsupportedGrantType(ApplicationError):
    """The grant type is not one this server issues tokens for."""


class UnauthorizedClient(ApplicationError):
    """The client is not allowed to use the grant type it asked for."""


class StreamEnded(ApplicationError):
    """An event stream has ended; ``reason`` says why, ``retry`` whether resuming makes sense."""

    def __init__(self, reason: str, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry = retry


class UnknownClient(ApplicationError):
    """An administrative command names a client that does not exist."""


class ClientExists(ApplicationError):
    """A client with that id is already registered."""


class InvalidTarget(ApplicationError):
    """The requested resource (RFC 8707) is not one this server serves."""


class RateLimited(ApplicationError):
    """Too many requests; ``retry_after`` says how many seconds to wait."""

    def __init__(self, retry_after: float, what: str = "too many requests") -> None:
        super().__init__(f"{what}; retry after {max(1, math.ceil(retry_after))} s")
        self.retry_after = retry_after


class TooManyStreams(RateLimited):
    """Opening one more event stream would pass a limit: the client's own, or the server's."""

    def __init__(self, retry_after: float, *, per_client: bool = True) -> None:
        whose = "this client has" if per_client else "the server has"
        super().__init__(retry_after, f"{whose} as many event streams open as it may")
        self.per_client = per_client


class InvalidTicket(ApplicationError):
    """A stream ticket is unknown, already used, expired, or meant for another resource."""


class ServiceUnavailable(ApplicationError):
    """A backing service (the shared store, the event bus) cannot be reached.

    Nothing is acknowledged: the operation either did not happen or its outcome is unknown (a
    reply lost with the connection), and the caller may try again after ``retry_after`` seconds.
    """

    def __init__(
        self,
        message: str = "the service is unavailable; try again shortly",
        retry_after: float = 1.0,
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
