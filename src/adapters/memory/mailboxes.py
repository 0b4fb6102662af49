"""Session mailboxes within one process: a bounded queue per open stream."""

from __future__ import annotations

from src.adapters.fanout.mailbox import LocalMailbox
from src.application.ports import Mailbox, SessionMailboxes

MAX_QUEUED = 256


class MemorySessionMailboxes(SessionMailboxes):
    """Mailboxes of this process, by session id."""

    def __init__(self, *, max_queued: int = MAX_QUEUED) -> None:
        self._boxes: dict[str, LocalMailbox] = {}
        self._max_queued = max_queued

    async def open(self, session_id: str) -> Mailbox:
        """A mailbox for the session's stream (replacing any earlier one)."""
        box = LocalMailbox(lambda closed: self._forget(session_id, closed), self._max_queued)
        previous = self._boxes.get(session_id)
        self._boxes[session_id] = box
        if previous is not None:
            previous.close()
        return box

    async def send(self, session_id: str, payload: bytes) -> bool:
        """Queue ``payload`` for the session's stream."""
        box = self._boxes.get(session_id)
        return box is not None and box.put(payload)

    def close_all(self) -> None:
        """Close every mailbox."""
        for box in list(self._boxes.values()):
            box.end("shutdown")

    def _forget(self, session_id: str, box: LocalMailbox) -> None:
        if self._boxes.get(session_id) is box:
            del self._boxes[session_id]
