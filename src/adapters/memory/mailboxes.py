"""Session mailboxes within one process: a bounded queue per open stream."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from src.application.ports import Mailbox, SessionMailboxes, SubscriptionClosed

MAX_QUEUED = 256


class MemoryMailbox(Mailbox):
    """A queue and at most one waiting reader; past the bound, the stream is cut off."""

    __slots__ = ("_closed", "_messages", "_on_close", "_waiter")

    def __init__(self, on_close: Callable[[MemoryMailbox], None] | None = None) -> None:
        self._messages: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._on_close = on_close

    def put(self, payload: bytes) -> bool:
        """Queue ``payload``; ``False`` when closed or too far behind (then closed)."""
        if self._closed or len(self._messages) >= MAX_QUEUED:
            self.close()
            return False
        self._messages.append(payload)
        self._wake()
        return True

    async def receive(self, timeout: float) -> list[bytes]:
        """Everything queued, waiting up to ``timeout`` for something."""
        if not self._messages and not self._closed:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        if self._closed:
            raise SubscriptionClosed("closed")
        batch = list(self._messages)
        self._messages.clear()
        return batch

    def close(self) -> None:
        """Close; wake the reader."""
        if not self._closed:
            self._closed = True
            if self._on_close is not None:
                self._on_close(self)
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class MemorySessionMailboxes(SessionMailboxes):
    """Mailboxes of this process, by session id."""

    def __init__(self) -> None:
        self._boxes: dict[str, MemoryMailbox] = {}

    async def open(self, session_id: str) -> Mailbox:
        """A mailbox for the session's stream (replacing any earlier one)."""
        box = MemoryMailbox(on_close=lambda closed: self._forget(session_id, closed))
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
            box.close()

    def _forget(self, session_id: str, box: MemoryMailbox) -> None:
        if self._boxes.get(session_id) is box:
            del self._boxes[session_id]
