"""The directory worker processes share their metrics through (``PROMETHEUS_MULTIPROC_DIR``).

Free of prometheus-client on purpose: the variable must be set before any process imports it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, MutableMapping
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def shared_directory(environ: MutableMapping[str, str] | None = None) -> Iterator[str]:
    """A directory for the workers' metric files, named in ``environ`` (default: this process's
    environment, which the workers inherit) while the context lasts.

    The operator's ``PROMETHEUS_MULTIPROC_DIR`` if set, emptied of an earlier run's files (they
    would be counted again); else a new temporary directory, removed afterwards.
    """
    environ = os.environ if environ is None else environ
    configured = environ.get(ENV)
    if configured:
        directory = Path(configured)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):
            stale.unlink()
        yield configured
        return
    created = tempfile.mkdtemp(prefix="calcmcp-metrics-")
    environ[ENV] = created
    try:
        yield created
    finally:
        environ.pop(ENV, None)
        shutil.rmtree(created, ignore_errors=True)
