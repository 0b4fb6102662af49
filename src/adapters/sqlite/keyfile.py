"""The server-side key of client-secret hashes: 32 random bytes, created once in the data directory.

Without this file no stored secret can be checked: back it up with the database, keep it apart.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

KEY_FILE = "client-secrets.key"
KEY_BYTES = 32


def load_or_create_key(data_dir: Path) -> bytes:
    """Return the key kept in ``data_dir``, creating it (mode 0600) on first start.

    Raises:
        ValueError: the file exists but does not hold a key of the right length.
    """
    path = data_dir / KEY_FILE
    if not path.exists():
        _create(path)
    key = path.read_bytes()
    if len(key) != KEY_BYTES:
        raise ValueError(f"{path} does not hold a {KEY_BYTES}-byte key")
    return key


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(secrets.token_bytes(KEY_BYTES))
        file.flush()
        os.fsync(file.fileno())
    # A hard link appears whole and refuses to replace: when two processes start together,
    # one key wins and neither ever reads a half-written file.
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(temporary)
