"""Signing keys: generated on first start, kept in the data directory (mode 0600), rotated.

The newest key of the configured algorithm signs; older keys only verify, and are dropped once
every token they signed has expired (``retired_at + token_lifetime``). Public keys are published
as a JWK Set; HMAC secrets never are.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import get_default_algorithms

KEY_FILE = "signing-keys.json"
ALGORITHMS = ("ES256", "EdDSA", "HS256")


@dataclass(frozen=True, slots=True, kw_only=True)
class SigningKey:
    """One key: its id, algorithm, material (PEM private key, or a base64url HMAC secret)."""

    kid: str
    algorithm: str
    created_at: float
    material: str
    retired_at: float | None = None

    @property
    def symmetric(self) -> bool:
        """Whether this is an HMAC secret (never published)."""
        return self.algorithm.startswith("HS")

    def signing_key(self) -> Any:
        """The key as pyjwt's algorithm wants it for signing."""
        if self.symmetric:
            return base64.urlsafe_b64decode(self.material + "==")
        return serialization.load_pem_private_key(self.material.encode(), password=None)

    def verifying_key(self) -> Any:
        """The key as pyjwt wants it for verifying."""
        key = self.signing_key()
        return key if self.symmetric else key.public_key()

    def jwk(self) -> dict[str, Any]:
        """The public JWK (RFC 7517) of an asymmetric key."""
        algorithm = get_default_algorithms()[self.algorithm]
        jwk: dict[str, Any] = algorithm.to_jwk(self.verifying_key(), as_dict=True)
        return {**jwk, "kid": self.kid, "alg": self.algorithm, "use": "sig"}


def generate(algorithm: str, now: float) -> SigningKey:
    """A fresh key for ``algorithm``."""
    if algorithm == "HS256":
        material = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    elif algorithm in ("ES256", "EdDSA"):
        private = (
            ec.generate_private_key(ec.SECP256R1())
            if algorithm == "ES256"
            else (ed25519.Ed25519PrivateKey.generate())
        )
        material = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    else:
        raise ValueError(f"unsupported signing algorithm {algorithm!r}; use one of {ALGORITHMS}")
    kid = hashlib.sha256(material.encode()).hexdigest()[:16]
    return SigningKey(kid=kid, algorithm=algorithm, created_at=now, material=material)


def static_hmac_key(secret: bytes) -> SigningKey:
    """An HS256 key from a configured secret (its id derived from it, not revealing it)."""
    kid = hashlib.sha256(b"calcmcp-kid:" + secret).hexdigest()[:16]
    material = base64.urlsafe_b64encode(secret).decode().rstrip("=")
    return SigningKey(kid=kid, algorithm="HS256", created_at=0.0, material=material)


class KeyFile:
    """The key ring as a JSON file in the data directory, written atomically with mode 0600."""

    def __init__(self, data_dir: Path, *, algorithm: str, token_lifetime: float) -> None:
        if algorithm not in ALGORITHMS:
            raise ValueError(
                f"unsupported signing algorithm {algorithm!r}; use one of {ALGORITHMS}"
            )
        self.path = data_dir / KEY_FILE
        self._algorithm = algorithm
        self._lifetime = token_lifetime

    def load(self) -> list[SigningKey]:
        """The keys still useful, creating the first one for the algorithm when there is none."""
        keys = self._read()
        now = time.time()
        live = [k for k in keys if k.retired_at is None or k.retired_at + self._lifetime > now]
        if not any(k.algorithm == self._algorithm and k.retired_at is None for k in live):
            # the algorithm changed: the old active key retires (it verifies until its tokens
            # expire, if its algorithm is still accepted) and a key for the new one signs
            live = [k if k.retired_at is not None else replace(k, retired_at=now) for k in live]
            live.append(generate(self._algorithm, now))
        if live != keys:
            self._write(live)
        return live

    def rotate(self) -> SigningKey:
        """Add a new signing key; the current ones keep verifying until their tokens expire."""
        now = time.time()
        keys = [k if k.retired_at is not None else replace(k, retired_at=now) for k in self.load()]
        new = generate(self._algorithm, now)
        self._write([*keys, new])
        return new

    def mtime(self) -> float:
        """When the file last changed (0 if it does not exist)."""
        try:
            return self.path.stat().st_mtime
        except FileNotFoundError:
            return 0.0

    def _read(self) -> list[SigningKey]:
        if not self.path.exists():
            return []
        return [SigningKey(**entry) for entry in json.loads(self.path.read_text())["keys"]]

    def _write(self, keys: list[SigningKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(f".tmp-{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump({"keys": [asdict(key) for key in keys]}, file, indent=1)
        os.replace(temporary, self.path)


def active_key(keys: list[SigningKey], algorithm: str) -> SigningKey:
    """The newest unretired key of ``algorithm``: the one that signs."""
    candidates = [k for k in keys if k.algorithm == algorithm and k.retired_at is None]
    if not candidates:
        raise ValueError(f"no active {algorithm} signing key")
    return max(candidates, key=lambda key: key.created_at)
