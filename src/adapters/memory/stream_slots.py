"""Open event streams counted in this process, per client and in total."""

from __future__ import annotations

from src.application.errors import TooManyStreams
from src.application.ports.streams import StreamSlots


class MemoryStreamSlots(StreamSlots):
    """Counters of open streams, refusing past ``max_streams`` or ``max_per_client``.

    Args:
        max_streams: most streams open at once in this process.
        max_per_client: most streams one client may have open at once.
        retry_after: seconds a refused client is told to wait.
    """

    def __init__(self, *, max_streams: int, max_per_client: int, retry_after: float = 5.0) -> None:
        self._max_streams = max_streams
        self._max_per_client = max_per_client
        self._retry_after = retry_after
        self._total = 0
        self._per_client: dict[str, int] = {}

    async def acquire(self, client_id: str) -> None:
        """Count one more stream of ``client_id``, or refuse."""
        held = self._per_client.get(client_id, 0)
        if held >= self._max_per_client:
            raise TooManyStreams(self._retry_after, per_client=True)
        if self._total >= self._max_streams:
            raise TooManyStreams(self._retry_after, per_client=False)
        self._per_client[client_id] = held + 1
        self._total += 1

    def release(self, client_id: str) -> None:
        """Count one stream of ``client_id`` fewer."""
        held = self._per_client.get(client_id, 0)
        if held <= 0:
            return
        if held == 1:
            del self._per_client[client_id]
        else:
            self._per_client[client_id] = held - 1
        self._total -= 1

    @property
    def open_streams(self) -> int:
        """How many streams hold a slot."""
        return self._total
