"""Use case: the recent events a principal may see (the MCP events resource)."""

from __future__ import annotations

from collections.abc import Sequence

from src.application.ports import EventBus, EventRecord
from src.application.security import Principal, Scope, require_scope
from src.domain.events import Event

MAX_RECENT = 100


class RecentEvents:
    """Lists recent events.

    Rules:
        - needs the ``sse`` scope;
        - the same audience rule as the live stream: broadcasts and the caller's own
          calculations, never another client's;
        - at most ``MAX_RECENT`` events, oldest first.
    """

    def __init__(self, *, events: EventBus) -> None:
        self._events = events

    async def execute(self, principal: Principal, limit: int = 50) -> Sequence[EventRecord]:
        """The newest ``limit`` events the principal may see."""
        require_scope(principal, Scope.SSE)
        client_id = principal.client_id

        def wants(event: Event) -> bool:
            return event.audience.admits(client_id)

        return await self._events.recent(limit=max(1, min(limit, MAX_RECENT)), wants=wants)
