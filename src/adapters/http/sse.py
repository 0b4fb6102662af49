"""Server-Sent Events: framing, and a lean ASGI response that pumps an event stream.

Framing is written by hand because it is the product's core: each event is framed once (a small
cache keyed by event id serves every subscriber the same bytes), and every ``data:`` line is one
line of JSON, so no message can inject a field or an extra event.

The response is a plain ASGI callable in one coroutine frame, with one task (the connection's
own): a process holds ten thousand of them, and each frame, task, closure and cached header
object an open stream keeps alive costs memory for as long as it is open. The client's
disconnect is watched without a task of its own (see :mod:`writer`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import msgspec
from litestar.types import Receive, Scope, Send

from src.adapters.http.observe import metrics_of
from src.adapters.http.writer import DirectWriter, DisconnectWatch
from src.adapters.wire import encoder, event_data
from src.application.errors import StreamEnded
from src.application.ports import EventRecord
from src.application.stream_events import EventStream

PING = b": ping\n\n"
START_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # nginx and friends: do not buffer this response
)


class _Notice(msgspec.Struct):
    reason: str
    message: str
    retry: bool = True


class FrameCache:
    """Frames each event once, however many subscribers it goes to.

    Sized for the live edge: an event is framed as it is published and sent on at once, and a
    subscriber at most ``CALCMCP_SUBSCRIBER_QUEUE`` (1024) events behind still finds its frames.
    Replays from further back are framed again, which costs microseconds; a frame can be 4 KiB.
    """

    __slots__ = ("_frames", "_size")

    def __init__(self, size: int = 1024) -> None:
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


class EventStreamBody:
    """Streams an :class:`EventStream` as ``text/event-stream`` (an ASGI app a handler returns)."""

    __slots__ = ("_frames", "_ping", "_retry_ms", "_stream")

    def __init__(
        self, stream: EventStream, *, frames: FrameCache, ping: float, retry_ms: int
    ) -> None:
        self._stream = stream
        self._frames = frames
        self._ping = ping
        self._retry_ms = retry_ms

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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pump the stream until it ends, the client leaves, or the server stops."""
        stream, frames, ping = self._stream, self._frames, self._ping
        watch = None
        metrics = metrics_of(scope)
        metrics.stream_opened("events")
        try:
            # a list of its own: middleware may add to a message's headers in place
            headers = list(START_HEADERS)
            start: Any = {"type": "http.response.start", "status": 200, "headers": headers}
            await send(start)
            watch = DisconnectWatch(receive, stream.close)
            writer = DirectWriter(send)
            await writer.write(self.preamble())
            stream.deliver_to(_Sink(writer, frames, stream))
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
        finally:  # however the response ends, even before its body starts: the slot comes back
            stream.close()
            if watch is not None:
                watch.cancel()
            metrics.stream_closed("events")


class _Sink:
    """Delivery straight from the publisher (see :mod:`writer`); an object, not a closure,
    to keep what each open stream holds small."""

    __slots__ = ("_frames", "_stream", "_writer")

    def __init__(self, writer: DirectWriter, frames: FrameCache, stream: EventStream) -> None:
        self._writer = writer
        self._frames = frames
        self._stream = stream

    def __call__(self, record: EventRecord) -> bool:
        writer = self._writer
        try:
            if not writer.try_write(self._frames.frame(record)):
                return False
        except Exception:
            self._stream.close()
            return True
        if writer.busy:  # the server must wait for the client: the stream's task finishes it
            self._stream.wake()
        return True


def last_event_id(scope: Scope, query_value: str | None) -> str | None:
    """The id to resume after: the ``Last-Event-ID`` header, else the ``lastEventId`` parameter.

    Read from the raw headers: Litestar's parsed header object would be cached on the scope
    and kept alive, with every header decoded, for as long as the stream is open.
    """
    for name, value in scope["headers"]:
        if name == b"last-event-id" and value:
            return value.decode("latin-1")
    return query_value or None
