"""The Redis client every adapter uses, and what they do when Redis cannot be reached."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterator

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.maint_notifications import MaintNotificationsConfig

from src.application.errors import ServiceUnavailable

DEFAULT_PREFIX = "calcmcp:"
MAX_CONNECTIONS = 256
"""Connections one process opens to Redis at most; beyond, a call waits for a free one."""
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, ReadOnlyError)
"""What a lost, timed-out or failing-over Redis raises (``ReadOnlyError``: we reached a replica)."""


def connect(url: str, *, timeout: float = 5.0, max_connections: int = MAX_CONNECTIONS) -> Redis:
    """A client for ``url`` (``redis://host:port/db``) that fails fast instead of retrying.

    redis-py retries a failed command ten times by default. None of ours may run twice: a
    second ``XADD`` publishes the event again, a second ticket redemption finds nothing, a second
    rate-limit script charges twice. So a failure is reported at once, and the caller (or the
    client, told 503) decides. A pooled connection the server has closed (say, it restarted) is
    replaced before use; redis-py skips that check while maintenance notifications are on
    ("auto", its default with RESP3), so they are turned off: they serve managed Redis services'
    planned failovers, which this adapter does not rely on.

    The pool is redis-py's blocking one: its default pool refuses a call at once (a
    ``ConnectionError``, which would be answered 503) when all its connections are in use, as
    they are when a burst of streams checks the deny-list together; here the call waits, up to
    ``timeout``, for a connection to come free.

    Args:
        url: where Redis is.
        timeout: seconds to connect, to wait for any reply (above the event reader's block), and
            to wait for a free connection.
        max_connections: the most connections the pool opens.
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        client_name="calcmcp",
        maint_notifications_config=MaintNotificationsConfig(enabled=False),
    )
    client = Redis(connection_pool=pool)
    client.auto_close_connection_pool = True  # closing the client closes its pool
    return client


@contextlib.contextmanager
def unavailable(what: str) -> Iterator[None]:
    """Turn a lost Redis into :class:`ServiceUnavailable` naming ``what`` could not be done."""
    try:
        yield
    except UNAVAILABLE as error:
        raise ServiceUnavailable(f"{what} is unavailable; try again shortly") from error


class Backoff:
    """Exponential back-off with jitter, for the background tasks that reconnect on their own.

    The jitter keeps the processes of a deployment from reconnecting in lockstep after an outage.
    """

    def __init__(self, *, base: float = 0.05, cap: float = 2.0) -> None:
        self._base = base
        self._cap = cap
        self._next = base

    def reset(self) -> None:
        """The connection works again: the next failure starts from the base delay."""
        self._next = self._base

    async def sleep(self) -> None:
        """Wait before the next attempt: half to all of the current delay, which then doubles."""
        delay = self._next * (0.5 + random.random() / 2)  # noqa: S311 (jitter, not a secret)
        self._next = min(self._cap, self._next * 2)
        await asyncio.sleep(delay)
