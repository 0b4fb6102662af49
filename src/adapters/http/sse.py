"""Server-Sent Events: framing, and a lean streaming response that pumps an event stream.

Framing is written by hand because it is the product's core: each event is framed once (a small
cache keyed by event id serves every subscriber the same bytes), and every ``data:`` line is one
line of JSON, so no message can inject a field or an extra event. The response runs one task per
stream plus one waiting for the client's disconnect, instead of Litestar's task group per stream.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.datastructures import Cookie
from litestar.response.base import ASGIResponse
from litestar.types import Receive, Send

from src.adapters.http.wire import encoder, event_data
from src.adapters.http.writer import DirectWriter
from src.application.errors import StreamEnded
from src.application.ports import EventRecord
from src.application.stream_events import EventStream

PING = b": ping\n\n"
EVENT_STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # nginx and friends: do not buffer this response
}


class _Notice(msgspec.Struct):
    reason: str
    message: str
    retry: bool = True


class FrameCache:
    """Frames each event once, however many subscribers it goes to."""

    __slots__ = ("_frames", "_size")

    def __init__(self, size: int = 4096) -> None:
        self._frames: OrderedDict[str, bytes] = OrderedDict()
        self._size = size

    def frame(self, record: EventRecord) -> bytes:
        """The SSE frame of ``record``: ``id:``, ``event:`` and a one-line JSON ``data:``."""
        frame = self._frames.get(record.id)
        if frame is None:
            data = encoder.encode(event_data(record.event))
            frame = b"id: %s\nevent: %s\ndata: %s\n\n" % (
                record.id.encode(),
                record.event.type.encode(),
                data,
            )
            self._frames[record.id] = frame
            if len(self._frames) > self._size:
                self._frames.popitem(last=False)
        return frame

    def frames(self, batch: Sequence[EventRecord]) -> bytes:
        """The frames of a batch, in order."""
        if len(batch) == 1:
            return self.frame(batch[0])
        return b"".join(self.frame(record) for record in batch)


def notice(event: str, reason: str, message: str, *, retry: bool = True) -> bytes:
    """A control event without an id (so a client's Last-Event-ID stays where it was)."""
    data = encoder.encode(_Notice(reason=reason, message=message, retry=retry))
    return b"event: %s\ndata: %s\n\n" % (event.encode(), data)


class EventStreamResponse(Response[bytes]):
    """Streams an :class:`EventStream` as ``text/event-stream``."""

    def __init__(
        self, stream: EventStream, *, frames: FrameCache, ping: float, retry_ms: int
    ) -> None:
        super().__init__(b"", media_type="text/event-stream", headers=EVENT_STREAM_HEADERS)
        self._stream = stream
        self._frames = frames
        self._ping = ping
        self._retry_ms = retry_ms

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        headers: dict[str, str] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        cookies: Iterable[Cookie] | None = None,
        is_head_response: bool = False,
        **_: Any,
    ) -> ASGIResponse:
        """Build the ASGI response that pumps the stream."""
        return _ASGIEventStream(
            self,
            headers={**(headers or {}), **self.headers},
            encoded_headers=encoded_headers,
            cookies=cookies,
            is_head_response=is_head_response,
            media_type="text/event-stream",
            status_code=200,
        )

    def preamble(self) -> bytes:
        """What a client receives on connect: the reconnection delay, and a gap notice if any."""
        head = b"retry: %d\n\n" % self._retry_ms
        if self._stream.gap:
            head += notice(
                "reset",
                "gap",
                "events after your Last-Event-ID are no longer kept; what follows is all there is",
            )
        return head


class _ASGIEventStream(ASGIResponse):
    _should_set_content_length = False

    def __init__(self, source: EventStreamResponse, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._source = source

    async def send_body(self, send: Send, receive: Receive) -> None:
        source = self._source
        stream, frames, ping = source._stream, source._frames, source._ping
        writer = DirectWriter(send)
        watcher = asyncio.ensure_future(_close_on_disconnect(receive, stream))
        try:
            await writer.write(source.preamble())
            stream.deliver_to(_sink(writer, frames, stream))
            while True:
                await writer.finish()
                try:
                    batch = await stream.next_batch(ping)
                except StreamEnded as ended:
                    if ended.reason != "closed":
                        end = notice("end", ended.reason, str(ended), retry=ended.retry)
                        await writer.write(end)
                    break
                if batch:
                    await writer.write(frames.frames(batch))
                elif not writer.busy:  # a timeout, not a wake to finish a direct write
                    await writer.write(PING)
            await writer.end()
        except OSError:  # the connection is gone: nothing more to say
            pass
        finally:
            stream.close()
            watcher.cancel()


def _sink(
    writer: DirectWriter, frames: FrameCache, stream: EventStream
) -> Callable[[EventRecord], bool]:
    """Delivery straight from the publisher (see :mod:`writer`)."""

    def deliver(record: EventRecord) -> bool:
        try:
            if not writer.try_write(frames.frame(record)):
                return False
        except Exception:
            stream.close()
            return True
        if writer.busy:  # the server must wait for the client: the stream's task finishes it
            stream.wake()
        return True

    return deliver


async def _close_on_disconnect(receive: Receive, stream: EventStream) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    stream.close()


def last_event_id(request: Request[Any, Any, Any], query_value: str | None) -> str | None:
    """The id to resume after: the ``Last-Event-ID`` header, else the ``lastEventId`` parameter."""
    return request.headers.get("last-event-id") or query_value or None
