"""Session mailboxes over Redis pub/sub: a message reaches the stream wherever it is open."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Coroutine
from typing import Any

from redis.asyncio import Redis

from src.adapters.fanout.mailbox import LocalMailbox
from src.adapters.redis.channels import Channels
from src.adapters.redis.connection import DEFAULT_PREFIX, unavailable
from src.application.ports import Mailbox, SessionMailboxes

_MESSAGE, _OPENED = b"m", b"o"  # what a channel carries: a message, or "opened by process X"


class RedisSessionMailboxes(SessionMailboxes):
    """A channel per session, subscribed to by the process that holds its stream.

    :meth:`send` publishes, and ``PUBLISH`` answers how many processes listen, so ``False``
    means no stream holds the session anywhere. Opening a session's mailbox announces it on the
    channel, and a mailbox for that session in another process closes, as reopening does within
    one process. If the pub/sub connection is lost, every mailbox here ends with
    ``unavailable`` (its client reconnects) and the next :meth:`open` connects anew.

    Args:
        redis: the client.
        prefix: the prefix of every channel.
        max_queued: most messages waiting for one stream before it is cut off.
        timeout: seconds to wait for Redis to confirm a subscription.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_queued: int = 256,
        timeout: float = 5.0,
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}mailbox:"
        self._me = secrets.token_hex(8).encode()
        self._max_queued = max_queued
        self._boxes: dict[str, LocalMailbox] = {}
        self._channels = Channels(
            redis, on_message=self._deliver, on_lost=self._lost, timeout=timeout
        )
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self, session_id: str) -> Mailbox:
        """This process holds the session's stream: a mailbox for it (replacing any other).

        Raises:
            ServiceUnavailable: Redis cannot be reached.
        """
        box = LocalMailbox(lambda closed: self._forget(session_id, closed), self._max_queued)
        previous, self._boxes[session_id] = self._boxes.get(session_id), box
        if previous is not None:
            previous.close()
        channel = self._channel(session_id)
        try:
            with unavailable("session delivery"):
                await self._channels.subscribe(channel)
                await self._redis.publish(channel, _OPENED + self._me)
        except BaseException:
            box.end("unavailable")
            raise
        return box

    async def send(self, session_id: str, payload: bytes) -> bool:
        """Deliver ``payload`` to the process that holds the session's stream, if any.

        Raises:
            ServiceUnavailable: Redis cannot be reached; nothing was delivered.
        """
        with unavailable("session delivery"):
            receivers = await self._redis.publish(self._channel(session_id), _MESSAGE + payload)
        return bool(receivers)

    def close_all(self) -> None:
        """Close every mailbox of this process (shutdown)."""
        for box in list(self._boxes.values()):
            box.end("shutdown")

    async def aclose(self) -> None:
        """:meth:`close_all`, and drop the pub/sub connection."""
        self.close_all()
        for task in list(self._tasks):
            task.cancel()
        await self._channels.aclose()

    def _channel(self, session_id: str) -> bytes:
        return (self._prefix + session_id).encode()

    def _deliver(self, channel: bytes, data: bytes) -> None:
        box = self._boxes.get(channel[len(self._prefix) :].decode())
        if box is None:
            return
        if data[:1] == _MESSAGE:
            box.put(data[1:])
        elif data[:1] == _OPENED and data[1:] != self._me:  # the stream moved to another process
            box.close()

    def _lost(self) -> None:
        for box in list(self._boxes.values()):
            box.end("unavailable")

    def _forget(self, session_id: str, box: LocalMailbox) -> None:
        if self._boxes.get(session_id) is not box:
            return
        del self._boxes[session_id]
        channel = self._channel(session_id)
        with contextlib.suppress(RuntimeError):  # no event loop: nothing to unsubscribe from
            self._spawn(self._channels.unsubscribe(channel, lambda: session_id not in self._boxes))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)  # a reference, or the loop may collect the task mid-flight
        task.add_done_callback(self._tasks.discard)
