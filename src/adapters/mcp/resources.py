"""The events a caller may see, as an MCP resource."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from src.adapters.wire import encoder, event_data
from src.application.recent_events import RecentEvents
from src.application.security import Principal, Scope

EVENTS_URI = "calc://events/recent"
EVENTS = {
    "uri": EVENTS_URI,
    "name": "recent-events",
    "title": "Recent events",
    "description": (
        "The most recent events you may see, oldest first: every broadcast and your own "
        "client's calculations (the same rule as the live /events stream)."
    ),
    "mimeType": "application/json",
}


class ResourceRead(msgspec.Struct):
    """``resources/read`` (and subscribe) params."""

    uri: str


class Resources:
    """Lists and reads the events resource."""

    def __init__(self, *, recent_events: Callable[[], RecentEvents]) -> None:
        self._recent_events = recent_events

    def visible(self, principal: Principal) -> list[dict[str, Any]]:
        """The resources the caller may read (the events need the ``sse`` scope)."""
        return [EVENTS] if Scope.SSE in principal.scopes else []

    def exists(self, uri: str) -> bool:
        """Whether ``uri`` names a resource of this server."""
        return uri == EVENTS_URI

    async def read(self, principal: Principal) -> list[dict[str, Any]]:
        """The events resource's contents."""
        records = await self._recent_events().execute(principal)
        events = [{"id": record.id, **_fields(record.event)} for record in records]
        text = encoder.encode(events).decode()
        return [{"uri": EVENTS_URI, "mimeType": "application/json", "text": text}]


def _fields(event: Any) -> dict[str, Any]:
    # keep decimals and times as objects: the encoder writes them (decimals as JSON numbers)
    data: dict[str, Any] = msgspec.to_builtins(
        event_data(event), builtin_types=(Decimal, datetime.datetime)
    )
    return data
