"""``GET /events`` (a resumable SSE stream) and ``POST /broadcast``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.exceptions import ClientException
from litestar.params import QueryParameter

from src.adapters.http.di import Injected
from src.adapters.http.openapi import (
    SSE_SECURITY,
    bearer_responses,
    problem_spec,
    response_spec,
)
from src.adapters.http.sse import EventStreamResponse, FrameCache, last_event_id
from src.application.broadcast import Broadcast, BroadcastCommand
from src.application.security import Principal
from src.application.stream_events import StreamEvents, StreamEventsCommand
from src.domain.events import EventType


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamOptions:
    """How streams are paced: keep-alive comments, and the reconnection delay clients are told."""

    ping_interval: float
    retry_ms: int
    frames: FrameCache


class BroadcastResponse(msgspec.Struct):
    """A broadcast's receipt."""

    status: str
    event_id: str


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
        "`: ping` comment keeps idle connections open. Needs the `sse` scope."
    ),
    security=SSE_SECURITY,
    media_type="text/event-stream",
    responses={
        200: response_spec(str, "The event stream", media_type="text/event-stream"),
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
) -> Response[bytes]:
    """Open the caller's event stream."""
    command = StreamEventsCommand(
        last_event_id=last_event_id(request, last_id), types=_event_types(types)
    )
    stream = await stream_events.execute(request.user, command)
    # from app state, not a second dependency: Litestar resolves sibling dependencies in a task
    # group, which would cost every connection two extra tasks
    stream_options: StreamOptions = request.app.state.stream_options
    return EventStreamResponse(
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
