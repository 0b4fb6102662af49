"""Writes to a streaming response from outside its task, and watches for the client leaving,
both without a task of their own.

A broadcast to ten thousand streams spends more time switching to each stream's task than
writing to its socket. So a publisher delivers an event by starting the stream's ASGI ``send``
right there: when the server can take the bytes at once (the usual case: its write buffer is
not full), the ``send`` coroutine completes on its first step and no task runs at all. When the
server must wait (flow control: a slow reader), the half-done ``send`` is handed to the stream's
own task, which finishes it exactly as a ``Task`` would, awaiting what it waits on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, cast

from litestar.types import Receive, Send


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
                    # the future is marked as awaited by the coroutine that yielded it; a Task
                    # clears the mark when it takes the future over, else awaiting it here fails
                    # ("await wasn't used with future")
                    waiting_on._asyncio_future_blocking = False
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


class DisconnectWatch:
    """Calls ``on_disconnect`` once the client has gone, stepping ``receive`` by hand.

    A task per stream that does nothing but wait for ``http.disconnect`` costs a task object,
    its context and a coroutine frame for as long as the stream is open. Here the ``receive``
    coroutine is stepped as a ``Task`` would step it: when it stops on a future, a callback on
    that future resumes it.
    """

    __slots__ = ("_on_disconnect", "_receive", "_receiving")

    def __init__(self, receive: Receive, on_disconnect: Callable[[], None]) -> None:
        self._receive = receive
        self._on_disconnect = on_disconnect
        self._receiving: Coroutine[Any, Any, Any] | None = None
        self._step(cast("Coroutine[Any, Any, Any]", receive()))

    def cancel(self) -> None:
        """Stop watching."""
        receiving, self._receiving = self._receiving, None
        if receiving is not None:
            receiving.close()

    def _step(self, receiving: Coroutine[Any, Any, Any]) -> None:
        while True:
            try:
                waiting_on = receiving.send(None)
            except StopIteration as done:
                if done.value["type"] == "http.disconnect":
                    self._on_disconnect()
                    return
                receiving = cast("Coroutine[Any, Any, Any]", self._receive())  # a request body
                continue
            except BaseException:  # the server cannot tell us any more: treat it as gone
                self._on_disconnect()
                return
            self._receiving = receiving
            if asyncio.isfuture(waiting_on):
                waiting_on._asyncio_future_blocking = False  # taken over, as a Task does
                waiting_on.add_done_callback(self._resume)
            else:  # a bare yield: step again on the next turn of the loop
                asyncio.get_running_loop().call_soon(self._resume, None)
            return

    def _resume(self, _: object) -> None:
        receiving, self._receiving = self._receiving, None
        if receiving is not None:
            self._step(receiving)
