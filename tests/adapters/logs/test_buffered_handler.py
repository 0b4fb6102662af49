"""The batched log writer: late by at most its interval, never out of order, nothing lost."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator

import pytest

from src.adapters.logs import BufferedLineHandler


class CountingStream(io.StringIO):
    """A stream that counts its writes (each would be a syscall on a real one)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


@pytest.fixture
def stream() -> CountingStream:
    return CountingStream()


@pytest.fixture
def logger(stream: CountingStream) -> Iterator[logging.Logger]:
    name = f"test.buffered.{id(stream)}"
    handler = BufferedLineHandler(stream, batched=[name], interval=0.2, size=1000)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    log = logging.getLogger(name)
    log.propagate = False
    log.setLevel(logging.DEBUG)
    log.addHandler(handler)
    yield log
    log.removeHandler(handler)
    handler.close()


def test_lines_are_written_together_within_the_interval(
    logger: logging.Logger, stream: CountingStream
) -> None:
    for n in range(20):
        logger.info("request %d", n)
    assert stream.getvalue() == ""  # held
    deadline = time.monotonic() + 2
    while not stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stream.getvalue().splitlines() == [f"INFO request {n}" for n in range(20)]
    assert stream.writes == 1


def test_a_warning_is_written_at_once_after_what_was_held(
    logger: logging.Logger, stream: CountingStream
) -> None:
    logger.info("first")
    logger.warning("then this")
    assert stream.getvalue().splitlines() == ["INFO first", "WARNING then this"]


def test_enough_held_is_written_without_waiting(
    logger: logging.Logger, stream: CountingStream
) -> None:
    for n in range(100):  # about 1,500 characters: past the 1,000 held at most
        logger.info("request number %d", n)
    written = stream.getvalue().splitlines()
    assert 60 <= len(written) < 100
    assert written == [f"INFO request number {n}" for n in range(len(written))]


def test_closing_writes_what_is_held(stream: CountingStream) -> None:
    handler = BufferedLineHandler(stream, batched=["access"], interval=60)
    handler.setFormatter(logging.Formatter("%(message)s"))
    record = logging.makeLogRecord({"name": "access", "msg": "last words", "levelno": 20})
    handler.handle(record)
    assert stream.getvalue() == ""
    handler.close()
    assert stream.getvalue() == "last words\n"


def test_lines_of_other_loggers_are_written_at_once_after_what_was_held(
    logger: logging.Logger, stream: CountingStream
) -> None:
    logger.info("held")
    other = logging.LogRecord("uvicorn.error", logging.INFO, "", 0, "Shutting down", None, None)
    logger.handlers[0].handle(other)
    assert stream.getvalue().splitlines() == ["INFO held", "INFO Shutting down"]
