"""Stream tickets in Redis: issued by one instance, redeemed once by any."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from redis.asyncio import Redis

from src.adapters.redis.connection import DEFAULT_PREFIX, unavailable
from src.adapters.redis.wire import decode_grant, encode_grant
from src.application.ports.streams import TicketGrant, TicketStore


class RedisTicketStore(TicketStore):
    """Each ticket a key holding its grant, expiring with it (``PX``), taken with ``GETDEL``.

    ``GETDEL`` reads and deletes in one step, so two instances redeeming the same ticket at
    once cannot both get it.

    Args:
        redis: the client.
        prefix: the prefix of every key.
        clock: the wall clock grants' expiry is read against (UNIX seconds).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}ticket:"
        self._clock = clock

    async def issue(self, ticket: str, grant: TicketGrant) -> None:
        """Keep ``grant`` under ``ticket`` until it expires (a void grant is not kept at all).

        Raises:
            ServiceUnavailable: Redis cannot be reached; no ticket was issued.
        """
        remaining = grant.expires_at - self._clock()
        if remaining <= 0:
            return
        with unavailable("the ticket store"):
            await self._redis.set(
                self._prefix + ticket, encode_grant(grant), px=math.ceil(remaining * 1000)
            )

    async def redeem(self, ticket: str) -> TicketGrant | None:
        """Take the grant of ``ticket`` (once, across every instance).

        Raises:
            ServiceUnavailable: Redis cannot be reached.
        """
        with unavailable("the ticket store"):
            data = await self._redis.getdel(self._prefix + ticket)
        return decode_grant(data) if isinstance(data, bytes) else None
