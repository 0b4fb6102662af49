"""The HMAC signing secret: from configuration, or generated once and kept in the data directory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_FILE = "jwt-hs256.secret"
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key must be at least as long as the hash output


def load_or_create_secret(data_dir: Path) -> bytes:
    """Return the secret kept in ``data_dir``, creating it (mode 0600) on first start."""
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(secrets.token_urlsafe(48))
    secret = path.read_text(encoding="ascii").strip().encode("ascii")
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"{path} holds a secret shorter than {MIN_SECRET_BYTES} bytes")
    return secret
