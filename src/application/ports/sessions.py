"""Protocol sessions (MCP's 2025-era transports), kept where any instance can find them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """A negotiated protocol session.

    Attributes:
        session_id: the unguessable id the client presents.
        client_id: the OAuth client that opened it; no other client may use it.
        protocol_version: the version negotiated at initialization.
        created_at: UNIX seconds.
        log_level: the level set by ``logging/setLevel``.
        subscriptions: resource URIs the client subscribed to.
    """

    session_id: str
    client_id: str
    protocol_version: str
    created_at: float
    log_level: str = "info"
    subscriptions: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class StreamMessage:
    """A message sent on a session's SSE stream, kept so a reconnecting client can resume."""

    event_id: str
    payload: bytes


class SessionStore(Protocol):
    """Sessions and the recent messages of their streams."""

    async def put(self, session: Session) -> None:
        """Create or update a session."""
        ...

    async def get(self, session_id: str) -> Session | None:
        """The session, unless unknown or deleted."""
        ...

    async def delete(self, session_id: str) -> bool:
        """End a session; ``False`` if it did not exist."""
        ...

    async def append(self, session_id: str, stream_id: str, payload: bytes) -> str:
        """Keep a message sent on one of the session's streams; returns its event id.

        Event ids name their stream, so a client resuming with ``Last-Event-ID`` is replayed the
        rest of that stream only.
        """
        ...

    async def replay(
        self, session_id: str, last_event_id: str
    ) -> tuple[str, Sequence[StreamMessage]]:
        """The stream ``last_event_id`` belongs to, and its messages after it (empty if unknown)."""
        ...


class Mailbox(Protocol):
    """Where one session's stream receives the messages sent to it."""

    async def receive(self, timeout: float) -> list[bytes]:
        """The messages that arrived, waiting up to ``timeout`` seconds for one (maybe none).

        Raises:
            SubscriptionClosed: the mailbox was closed (shutdown, or its backend is gone).
        """
        ...

    def close(self) -> None:
        """Stop receiving. Idempotent."""
        ...


class SessionMailboxes(Protocol):
    """Delivers messages to the stream that holds a session, wherever it is open.

    The HTTP+SSE transport answers a POST on the session's stream; with several server
    processes, the POST and the stream may be in different ones.
    """

    async def open(self, session_id: str) -> Mailbox:
        """This process holds the stream of ``session_id`` from now on."""
        ...

    async def send(self, session_id: str, payload: bytes) -> bool:
        """Deliver ``payload`` to the session's stream; ``False`` if no stream holds it."""
        ...

    def close_all(self) -> None:
        """Close every mailbox of this process (shutdown)."""
        ...
