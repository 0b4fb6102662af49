"""Protocol sessions kept in this process, with a bounded history of each stream's messages."""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from src.application.ports import Session, SessionStore, StreamMessage


@dataclass(slots=True)
class _Entry:
    session: Session
    streams: dict[str, deque[StreamMessage]] = field(default_factory=dict)


class MemorySessionStore(SessionStore):
    """Sessions in a dict (the oldest dropped past ``max_sessions``), streams keep ``history``."""

    def __init__(self, *, max_sessions: int = 10_000, history: int = 100) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._max_sessions = max_sessions
        self._history = history
        self._sequence = itertools.count(1)

    async def put(self, session: Session) -> None:
        """Create or update a session."""
        entry = self._entries.get(session.session_id)
        if entry is None:
            self._entries[session.session_id] = _Entry(session)
            if len(self._entries) > self._max_sessions:
                self._entries.popitem(last=False)
        else:
            entry.session = session

    async def get(self, session_id: str) -> Session | None:
        """The session, if it exists."""
        entry = self._entries.get(session_id)
        return entry.session if entry else None

    async def delete(self, session_id: str) -> bool:
        """End a session."""
        return self._entries.pop(session_id, None) is not None

    async def append(self, session_id: str, stream_id: str, payload: bytes) -> str:
        """Keep a stream message; its id is ``<stream>/<n>``."""
        event_id = f"{stream_id}/{next(self._sequence)}"
        entry = self._entries.get(session_id)
        if entry is not None:
            stream = entry.streams.setdefault(stream_id, deque(maxlen=self._history))
            stream.append(StreamMessage(event_id, payload))
        return event_id

    async def replay(
        self, session_id: str, last_event_id: str
    ) -> tuple[str, Sequence[StreamMessage]]:
        """The rest of the stream ``last_event_id`` belongs to."""
        stream_id = last_event_id.rpartition("/")[0]
        entry = self._entries.get(session_id)
        messages = entry.streams.get(stream_id, ()) if entry else ()
        ids = [message.event_id for message in messages]
        if last_event_id not in ids:
            return stream_id, []
        return stream_id, list(messages)[ids.index(last_event_id) + 1 :]
