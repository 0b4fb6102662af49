"""SIGTERM with event streams open: each stream is told, and the process exits promptly.

uvicorn waits for open streaming responses before it shuts down; the app must end its streams at
the signal itself (STYLE.md §9).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

import anyio
import httpx
import pytest

from tests.e2e.conftest import TIMEOUT, Block, EventStreamReader, Server, get_token, open_stream

pytestmark = pytest.mark.anyio

STREAMS = 3
EXIT_WITHIN = 2.0
END = {
    "reason": "shutdown",
    "message": "the server is shutting down; reconnect with Last-Event-ID to resume",
    "retry": True,
}


def assert_clean_exit(server: Server, signum: signal.Signals = signal.SIGTERM) -> None:
    """A graceful exit: lifespan shutdown ran, then uvicorn re-raised the signal."""
    # uvicorn restores the default handler and re-raises the signal it caught (exit -signum)
    assert server.process.returncode in (0, -signum), server.output()
    output = server.output()
    assert "Application shutdown complete." in output
    assert "Traceback" not in output
    assert "ERROR" not in output


async def wait_for_exit(server: Server, limit: float) -> float | None:
    """Seconds until the process exits, or None if it is still running after ``limit``."""
    started = time.monotonic()
    while time.monotonic() - started < limit + 1.0:
        if server.process.poll() is not None:
            return time.monotonic() - started
        await anyio.sleep(0.01)
    return None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_stop_signal_ends_every_stream_and_the_process_exits_within_2_s(
    launch: Callable[..., Server], signum: signal.Signals
) -> None:
    server = launch(log_level="info")
    endings: list[tuple[Block, Block | None]] = []

    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT)
        )
        token = await get_token(client)
        streams: list[EventStreamReader] = [
            await stack.enter_async_context(open_stream(client, token)) for _ in range(STREAMS)
        ]

        signalled = time.monotonic()
        server.process.send_signal(signum)
        for stream in streams:
            end = await stream.next_event(timeout=EXIT_WITHIN)
            endings.append((end, await stream.next_block(timeout=EXIT_WITHIN)))
        exited_after = await wait_for_exit(server, EXIT_WITHIN)
        elapsed = time.monotonic() - signalled

    for end, after in endings:
        assert end.lines[0] == b"event: end"
        assert end.id is None
        assert end.data == END
        assert after is None  # the response is complete: nothing follows the end notice
    assert exited_after is not None, f"still running {EXIT_WITHIN + 1} s after SIGTERM"
    assert elapsed < EXIT_WITHIN, f"took {elapsed:.2f} s"
    assert_clean_exit(server, signum)


async def test_sigterm_with_no_streams_exits_promptly(launch: Callable[..., Server]) -> None:
    server = launch(log_level="info")

    server.process.send_signal(signal.SIGTERM)
    exited_after = await wait_for_exit(server, EXIT_WITHIN)

    assert exited_after is not None
    assert exited_after < EXIT_WITHIN
    assert_clean_exit(server)
