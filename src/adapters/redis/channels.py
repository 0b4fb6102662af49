"""This process's Redis pub/sub channels: one connection, read by one task."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from src.adapters.redis.connection import UNAVAILABLE
from src.application.errors import ServiceUnavailable

log = logging.getLogger("calcmcp.redis")
_DOWN = "session delivery is unavailable; try again shortly"


class Channels:
    """Subscribes channels on one pub/sub connection and hands each message on.

    A subscription is confirmed by Redis before :meth:`subscribe` returns, so a message
    published after that is not missed. When the connection fails, ``on_lost`` is called and the
    next :meth:`subscribe` connects anew (connecting on demand is the back-off: nobody waits).

    Args:
        redis: the client.
        on_message: called with the channel and data of each message.
        on_lost: called when the connection has failed.
        timeout: seconds to wait for Redis to confirm a subscription.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        on_message: Callable[[bytes, bytes], None],
        on_lost: Callable[[], None],
        timeout: float,
    ) -> None:
        self._redis = redis
        self._on_message = on_message
        self._on_lost = on_lost
        self._timeout = timeout
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        self._confirmations: dict[bytes, asyncio.Future[None]] = {}
        self._lock = asyncio.Lock()  # (un)subscribe in the order they were decided

    async def subscribe(self, channel: bytes) -> None:
        """Listen to ``channel`` from now on (once Redis has confirmed it)."""
        async with self._lock:
            pubsub = self._pubsub or self._redis.pubsub()
            confirmed = asyncio.get_running_loop().create_future()
            self._confirmations[channel] = confirmed
            try:
                await pubsub.subscribe(channel)
                if self._pubsub is None:
                    self._pubsub = pubsub
                    self._listener = asyncio.get_running_loop().create_task(self._listen(pubsub))
                async with asyncio.timeout(self._timeout):
                    await confirmed
            except TimeoutError:
                raise ServiceUnavailable(_DOWN) from None
            finally:
                self._confirmations.pop(channel, None)
                if self._pubsub is not pubsub:  # never listened to: do not leak its connection
                    await _close(pubsub)

    async def unsubscribe(self, channel: bytes, unwanted: Callable[[], bool]) -> None:
        """Stop listening to ``channel`` if, once it is this call's turn, it is ``unwanted()``."""
        async with self._lock:
            if self._pubsub is not None and unwanted():
                with contextlib.suppress(*UNAVAILABLE):
                    await self._pubsub.unsubscribe(channel)

    async def aclose(self) -> None:
        """Stop listening to anything."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            await _close(pubsub)

    async def _listen(self, pubsub: PubSub) -> None:
        try:
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None:
                    self._dispatch(message)
        except Exception as error:  # the task's outermost edge
            if not isinstance(error, UNAVAILABLE):
                log.exception("the session mailbox listener failed")
        if self._pubsub is pubsub:
            self._pubsub = None
        for confirmed in self._confirmations.values():
            if not confirmed.done():
                confirmed.set_exception(ServiceUnavailable(_DOWN))
        self._on_lost()
        await _close(pubsub)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message["type"] == "message":
            self._on_message(message["channel"], message["data"])
        elif message["type"] == "subscribe":
            confirmed = self._confirmations.get(message["channel"])
            if confirmed is not None and not confirmed.done():
                confirmed.set_result(None)


async def _close(pubsub: PubSub) -> None:
    with contextlib.suppress(*UNAVAILABLE):
        await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
