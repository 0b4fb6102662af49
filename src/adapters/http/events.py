"""``GET /events`` (a resumable SSE stream) and ``POST /broadcast``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import ClientException
from litestar.params import QueryParameter

from src.adapters.http.di import Injected
from src.adapters.http.errors import NO_STORE
from src.adapters.http.openapi import (
    SSE_SECURITY,
    bearer_responses,
    problem_spec,
    response_spec,
)
from src.adapters.http.sse import EventStreamBody, FrameCache, last_event_id
from src.application.broadcast import Broadcast, BroadcastCommand
from src.application.issue_stream_ticket import IssueStreamTicket, IssueStreamTicketCommand
from src.application.security import Principal
from src.application.stream_events import StreamEvents, StreamEventsCommand
from src.domain.events import EventType


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamOptions:
    """How streams are paced (keep-alive comments, the reconnection delay clients are told),
    and the resource tickets are issued for."""

    resource: str
    ping_interval: float
    retry_ms: int
    frames: FrameCache


class BroadcastResponse(msgspec.Struct):
    """A broadcast's receipt."""

    status: str
    event_id: str


class TicketResponse(msgspec.Struct):
    """A stream ticket: put it in ``GET /events?ticket=...`` within ``expires_in`` seconds."""

    ticket: str
    expires_in: int


class _MessageBody(msgspec.Struct, forbid_unknown_fields=True):
    message: str


def _event_types(types: str | None) -> frozenset[EventType] | None:
    if types is None:
        return None
    return frozenset(EventType.parse(name.strip()) for name in types.split(",") if name.strip())


@get(
    "/events",
    tags=["Events"],
    summary="Follow the live event stream (SSE)",
    description=(
        "A `text/event-stream` of the broadcasts and of your own client's calculations. Each event "
        "has an `id:`, an `event:` (its type) and one line of JSON `data:`. Resume after a "
        "disconnect with the `Last-Event-ID` header (or `lastEventId`): the events you missed are "
        "replayed while the server still has them; if not, an `event: reset` says so first. A "
        "`: ping` comment keeps idle connections open. Needs the `sse` scope. Browsers, whose "
        "`EventSource` cannot send a header, pass a `ticket` from `POST /events/ticket` instead. "
        "Over the per-client or total stream limit: 429 with `Retry-After`."
    ),
    security=SSE_SECURITY,
    media_type="text/event-stream",
    responses={
        200: response_spec(str, "The event stream", media_type="text/event-stream"),
        429: problem_spec("Too many open streams, for this client or in total"),
        **bearer_responses(),
    },
)
async def events(
    request: Request[Principal, Any, Any],
    *,
    stream_events: Injected[StreamEvents],
    last_id: Annotated[
        str | None,
        QueryParameter(name="lastEventId", description="Resume after this event id (header wins)."),
    ] = None,
    types: Annotated[
        str | None,
        QueryParameter(
            description="Comma-separated event types to receive: broadcast, calculation."
        ),
    ] = None,
    ticket: Annotated[
        str | None,
        QueryParameter(description="A single-use ticket from POST /events/ticket, for browsers."),
    ] = None,
) -> EventStreamBody:
    """Open the caller's event stream."""
    del ticket  # redeemed by the authentication middleware; declared here for the docs
    command = StreamEventsCommand(
        last_event_id=last_event_id(request.scope, last_id), types=_event_types(types)
    )
    stream = await stream_events.execute(request.user, command)
    # from app state, not a second dependency: Litestar resolves sibling dependencies in a task
    # group, which would cost every connection two extra tasks
    stream_options: StreamOptions = request.app.state.stream_options
    return EventStreamBody(
        stream,
        frames=stream_options.frames,
        ping=stream_options.ping_interval,
        retry_ms=stream_options.retry_ms,
    )


@post(
    "/broadcast",
    status_code=200,
    tags=["Events"],
    summary="Broadcast a message to every subscriber",
    description=(
        'Sends `message` (query parameter, or a JSON body `{"message": ...}`) to every open '
        "event stream, and returns the event's id. Needs the `sse` scope."
    ),
    security=SSE_SECURITY,
    responses={
        400: problem_spec("The message is missing, empty or too long"),
        **bearer_responses(),
    },
    request_max_body_size=64 * 1024,
)
async def broadcast(
    request: Request[Principal, Any, Any],
    *,
    broadcast: Injected[Broadcast],
    message: Annotated[str | None, QueryParameter(description="The message.")] = None,
) -> BroadcastResponse:
    """Broadcast a message."""
    if message is None:
        body = await request.body()
        try:
            message = msgspec.json.decode(body, type=_MessageBody).message
        except msgspec.DecodeError:
            raise ClientException(
                'message is required: ?message=... or a JSON body {"message": "..."}'
            ) from None
    receipt = await broadcast.execute(request.user, BroadcastCommand(message=message))
    return BroadcastResponse(status="Message broadcast", event_id=receipt.event_id)


@post(
    "/events/ticket",
    status_code=200,
    tags=["Events"],
    summary="Get a single-use ticket to open the event stream from a browser",
    description=(
        "A browser's `EventSource` cannot send an `Authorization` header, and an access token "
        "never goes in a URL. This returns a ticket for `GET /events?ticket=...`: good for one "
        "stream, within `expires_in` seconds (never past the token's own expiry), at this "
        "server only, for the caller's client and scopes. Needs the `sse` scope."
    ),
    security=SSE_SECURITY,
    responses={
        200: response_spec(TicketResponse, "A ticket (no-store)"),
        **bearer_responses(),
    },
)
async def issue_ticket(
    request: Request[Principal, Any, Any],
    *,
    issue_stream_ticket: Injected[IssueStreamTicket],
) -> Response[TicketResponse]:
    """Issue a stream ticket."""
    stream_options: StreamOptions = request.app.state.stream_options
    command = IssueStreamTicketCommand(resource=stream_options.resource)
    issued = await issue_stream_ticket.execute(request.user, command)
    body = TicketResponse(ticket=issued.ticket, expires_in=issued.expires_in)
    return Response(body, headers=NO_STORE)
