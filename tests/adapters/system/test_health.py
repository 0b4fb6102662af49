"""The data directory's health check: a file can be made in it, and none is left behind."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from src.adapters.system.health import DataDirHealthCheck

pytestmark = pytest.mark.anyio


async def test_a_writable_directory_passes_and_keeps_no_probe_file(tmp_path: Path) -> None:
    (tmp_path / "clients.db").write_bytes(b"kept")
    check = DataDirHealthCheck(tmp_path)

    await check.check()

    assert check.name == "data_dir"
    assert os.listdir(tmp_path) == ["clients.db"]


async def test_a_missing_directory_fails(tmp_path: Path) -> None:
    check = DataDirHealthCheck(tmp_path / "gone")

    with pytest.raises(FileNotFoundError):
        await check.check()


async def test_a_file_in_the_directorys_place_fails(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    check = DataDirHealthCheck(data)
    shutil.rmtree(data)
    data.write_text("not a directory")

    with pytest.raises(NotADirectoryError):
        await check.check()
