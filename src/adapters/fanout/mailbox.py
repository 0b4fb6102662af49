"""One open session stream's mailbox in this process: a bounded queue and one waiting reader."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from src.application.ports import Mailbox, SubscriptionClosed


class LocalMailbox(Mailbox):
    """Messages delivered by the process's subscriber task; past ``limit``, the stream is cut off.

    Shared by the in-memory and Redis session mailboxes: whatever carries a message to this
    process, the stream that holds the session reads it from here.
    """

    __slots__ = ("_closed", "_limit", "_messages", "_on_close", "_waiter")

    def __init__(self, on_close: Callable[[LocalMailbox], None], limit: int) -> None:
        self._messages: deque[bytes] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed: str | None = None
        self._on_close = on_close
        self._limit = limit

    def put(self, payload: bytes) -> bool:
        """Queue ``payload``; ``False`` when closed, or so far behind that it is closed now."""
        if self._closed is not None:
            return False
        if len(self._messages) >= self._limit:
            self.end("closed")
            return False
        self._messages.append(payload)
        self._wake()
        return True

    async def receive(self, timeout: float) -> list[bytes]:
        """Everything queued, waiting up to ``timeout`` for something."""
        if not self._messages and self._closed is None:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
        if self._closed is not None:
            raise SubscriptionClosed(self._closed)
        batch = list(self._messages)
        self._messages.clear()
        return batch

    def close(self) -> None:
        """Stop receiving."""
        self.end("closed")

    def end(self, reason: str) -> None:
        """Close for ``reason`` (``closed``, ``shutdown``, ``unavailable``); wake the reader."""
        if self._closed is None:
            self._closed = reason
            self._on_close(self)
            self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
