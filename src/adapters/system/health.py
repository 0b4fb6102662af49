"""The data directory's health check: a file can be created in it, and removed."""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from src.application.ports import HealthCheck


class DataDirHealthCheck(HealthCheck):
    """Creates and deletes a temporary file in the data directory (keys, the client database
    and their replacements are written there).

    Run in a worker thread: a stalled disk (a network mount) must not stall the event loop.
    """

    name = "data_dir"

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    async def check(self) -> None:
        """Raise ``OSError`` unless the directory takes a new file."""
        await asyncio.to_thread(self._touch)

    def _touch(self) -> None:
        descriptor, path = tempfile.mkstemp(prefix=".health-", dir=self._directory)
        try:
            os.write(descriptor, b"ok")
        finally:
            os.close(descriptor)
            os.unlink(path)
