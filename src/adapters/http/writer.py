"""Writes to a streaming response from outside its task, without waiting for a task switch.

A broadcast to ten thousand streams spends more time switching to each stream's task than
writing to its socket. So a publisher delivers an event by starting the stream's ASGI ``send``
right there: when the server can take the bytes at once (the usual case: its write buffer is
not full), the ``send`` coroutine completes on its first step and no task runs at all. When the
server must wait (flow control: a slow reader), the half-done ``send`` is handed to the stream's
own task, which finishes it exactly as a ``Task`` would, awaiting what it waits on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, cast

from litestar.types import Send


class DirectWriter:
    """The one path by which a stream's body is written, from its task or a publisher."""

    __slots__ = ("_pending", "_send")

    def __init__(self, send: Send) -> None:
        self._send = send
        self._pending: tuple[Coroutine[Any, Any, None], Any] | None = None

    @property
    def busy(self) -> bool:
        """Whether a write is still in progress (the stream's task must finish it)."""
        return self._pending is not None

    def try_write(self, body: bytes) -> bool:
        """Start writing ``body`` now; ``False`` (nothing written) while a write is in progress.

        Raises:
            Exception: whatever the server's ``send`` raised (the connection is unusable).
        """
        if self._pending is not None:
            return False
        message: Any = {"type": "http.response.body", "body": body, "more_body": True}
        send = cast("Coroutine[Any, Any, None]", self._send(message))
        try:
            waiting_on = send.send(None)
        except StopIteration:
            return True
        self._pending = (send, waiting_on)
        return True

    async def finish(self) -> None:
        """Complete the write in progress, if any (called from the stream's own task)."""
        if self._pending is None:
            return
        send, waiting_on = self._pending
        try:
            while True:
                # What a suspended coroutine yields is what it waits on: a future (or None, a
                # bare yield). Wait for it, then resume the coroutine, as Task.__step does.
                if waiting_on is None:
                    await asyncio.sleep(0)
                else:
                    await waiting_on
                try:
                    waiting_on = send.send(None)
                except StopIteration:
                    return
        except BaseException:
            send.close()
            raise
        finally:
            self._pending = None

    async def write(self, body: bytes) -> None:
        """Write ``body`` from the stream's own task, after any write in progress."""
        await self.finish()
        self.try_write(body)
        await self.finish()

    async def end(self) -> None:
        """Finish the response."""
        await self.finish()
        await self._send({"type": "http.response.body", "body": b"", "more_body": False})
