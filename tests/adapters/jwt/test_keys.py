"""Signing keys: kept private in the data directory, rotated, retired, and dropped when spent."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from src.adapters.jwt import codec as codec_module
from src.adapters.jwt.codec import UNKNOWN_KID_RELOAD, JwtTokenCodec, KeyRing
from src.adapters.jwt.keys import (
    ALGORITHMS,
    KEY_FILE,
    KeyFile,
    SigningKey,
    active_key,
    generate,
    static_hmac_key,
)
from src.application.errors import InvalidToken
from src.application.ports import AccessTokenClaims

ISSUER = "https://calc.example"
LIFETIME = 300


def claims(jti: str = "jti-1") -> AccessTokenClaims:
    now = float(int(time.time()) - 5)
    return AccessTokenClaims(
        client_id="alice",
        scopes=frozenset({"sse"}),
        audience=("https://calc.example/mcp",),
        issued_at=now,
        expires_at=now + LIFETIME,
        token_id=jti,
    )


class Monotonic:
    """Stands in for ``time`` in the codec module: monotonic seconds move when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()


def ring_on(keys: KeyFile, algorithm: str) -> KeyRing:
    """The key ring as the composition root builds it on a key file."""
    return KeyRing(keys.load, algorithm=algorithm, version=keys.mtime)


def codec_on(ring: KeyRing) -> JwtTokenCodec:
    return JwtTokenCodec(keys=ring, issuer=ISSUER, algorithms=ALGORITHMS)


def stored(keys: KeyFile) -> list[dict[str, object]]:
    return list(json.loads(keys.path.read_text())["keys"])


def age_retirements(keys: KeyFile, seconds: float) -> None:
    """Pretend every retired key in the file was retired ``seconds`` earlier than it was."""
    entries = stored(keys)
    for entry in entries:
        if entry["retired_at"] is not None:
            entry["retired_at"] = float(entry["retired_at"]) - seconds  # type: ignore[arg-type]
    keys.path.write_text(json.dumps({"keys": entries}))


@pytest.fixture
def umask_zero() -> Iterator[None]:
    """No umask, so the file's mode is whatever the code asked for."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_first_load_creates_one_active_key_of_the_algorithm(
    tmp_path: Path, algorithm: str
) -> None:
    keys = KeyFile(tmp_path / "data", algorithm=algorithm, token_lifetime=LIFETIME)
    [key] = keys.load()
    assert (key.algorithm, key.retired_at) == (algorithm, None)
    assert keys.path == tmp_path / "data" / KEY_FILE


@pytest.mark.usefixtures("umask_zero")
def test_the_key_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path, algorithm="ES256", token_lifetime=LIFETIME)
    keys.load()
    assert stat.S_IMODE(keys.path.stat().st_mode) == 0o600
    keys.rotate()
    assert stat.S_IMODE(keys.path.stat().st_mode) == 0o600
    assert [path.name for path in tmp_path.iterdir()] == [KEY_FILE]


def test_the_keys_outlive_the_process(tmp_path: Path) -> None:
    first = KeyFile(tmp_path, algorithm="EdDSA", token_lifetime=LIFETIME).load()
    again = KeyFile(tmp_path, algorithm="EdDSA", token_lifetime=LIFETIME).load()
    assert again == first
    token = codec_on(
        ring_on(KeyFile(tmp_path, algorithm="EdDSA", token_lifetime=LIFETIME), "EdDSA")
    )
    assert token.decode(token.encode(claims())).client_id == "alice"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_after_a_rotation_the_new_key_signs_and_the_old_one_still_verifies(
    tmp_path: Path, algorithm: str
) -> None:
    keys = KeyFile(tmp_path, algorithm=algorithm, token_lifetime=LIFETIME)
    ring = ring_on(keys, algorithm)
    codec = codec_on(ring)
    old_token = codec.encode(claims("before"))
    old_kid = ring.signer.kid
    new = keys.rotate()
    ring.refresh(force=True)
    new_token = codec.encode(claims("after"))
    assert new.kid != old_kid
    assert ring.signer.kid == new.kid
    assert codec_on(ring).decode(old_token).token_id == "before"
    assert codec_on(ring).decode(new_token).token_id == "after"
    [retired] = [key for key in keys.load() if key.kid == old_kid]
    assert retired.retired_at is not None


def test_a_rotation_is_noticed_through_the_file_without_forcing(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path, algorithm="ES256", token_lifetime=LIFETIME)
    ring = ring_on(keys, "ES256")
    new = KeyFile(tmp_path, algorithm="ES256", token_lifetime=LIFETIME).rotate()
    # The ring watches the file's mtime; make sure it moved even on a coarse-grained file system.
    later = keys.mtime() + 1
    os.utime(keys.path, (later, later))
    ring.refresh(every=0)
    assert ring.signer.kid == new.kid


def test_a_token_from_a_key_rotated_in_elsewhere_verifies_after_a_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seconds = Monotonic()
    monkeypatch.setattr(codec_module, "time", seconds)
    here = ring_on(KeyFile(tmp_path, algorithm="EdDSA", token_lifetime=LIFETIME), "EdDSA")
    elsewhere = KeyFile(tmp_path, algorithm="EdDSA", token_lifetime=LIFETIME)
    elsewhere.rotate()
    token = codec_on(ring_on(elsewhere, "EdDSA")).encode(claims())
    seconds.now += UNKNOWN_KID_RELOAD
    assert codec_on(here).decode(token).client_id == "alice"


def test_the_public_keys_follow_rotation_and_retirement(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path, algorithm="ES256", token_lifetime=LIFETIME)
    ring = ring_on(keys, "ES256")
    first = ring.signer.kid
    second = keys.rotate().kid
    ring.refresh(force=True)
    assert {jwk["kid"] for jwk in codec_on(ring).public_keys()} == {first, second}
    age_retirements(keys, LIFETIME + 1)
    ring.refresh(force=True)
    assert {jwk["kid"] for jwk in codec_on(ring).public_keys()} == {second}


def test_a_key_retired_longer_than_the_token_lifetime_is_dropped(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path, algorithm="ES256", token_lifetime=LIFETIME)
    ring = ring_on(keys, "ES256")
    codec = codec_on(ring)
    old_token = codec.encode(claims())
    old_kid = ring.signer.kid
    keys.rotate()
    age_retirements(keys, LIFETIME + 1)
    assert old_kid not in {key.kid for key in keys.load()}
    assert old_kid not in {entry["kid"] for entry in stored(keys)}
    ring.refresh(force=True)
    with pytest.raises(InvalidToken):
        codec_on(ring).decode(old_token)


def test_a_key_retired_within_the_token_lifetime_is_kept(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path, algorithm="ES256", token_lifetime=LIFETIME)
    [old] = keys.load()
    keys.rotate()
    age_retirements(keys, LIFETIME - 10)
    assert old.kid in {key.kid for key in keys.load()}


def test_every_rotation_leaves_exactly_one_active_key(tmp_path: Path) -> None:
    keys = KeyFile(tmp_path, algorithm="HS256", token_lifetime=LIFETIME)
    for _ in range(3):
        keys.rotate()
    loaded = keys.load()
    assert len(loaded) == 4
    assert [key.kid for key in loaded if key.retired_at is None] == [
        active_key(loaded, "HS256").kid
    ]


def test_switching_algorithm_retires_the_previous_key_until_its_tokens_expire(
    tmp_path: Path,
) -> None:
    before = KeyFile(tmp_path, algorithm="ES256", token_lifetime=LIFETIME)
    old_token = codec_on(ring_on(before, "ES256")).encode(claims())
    [es256] = before.load()
    switched = KeyFile(tmp_path, algorithm="EdDSA", token_lifetime=LIFETIME)
    ring = ring_on(switched, "EdDSA")
    assert ring.signer.algorithm == "EdDSA"
    [retired] = [key for key in switched.load() if key.kid == es256.kid]
    assert retired.retired_at is not None
    assert codec_on(ring).decode(old_token).client_id == "alice"
    age_retirements(switched, LIFETIME + 1)
    assert [key.algorithm for key in switched.load()] == ["EdDSA"]


def test_an_unsupported_algorithm_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unsupported"):
        KeyFile(tmp_path, algorithm="RS256", token_lifetime=LIFETIME)
    with pytest.raises(ValueError, match="unsupported"):
        generate("none", time.time())


def test_the_active_key_is_the_newest_unretired_one_of_the_algorithm() -> None:
    old, new = generate("ES256", 100.0), generate("ES256", 200.0)
    other = generate("EdDSA", 300.0)
    retired = replace(generate("ES256", 400.0), retired_at=500.0)
    assert active_key([new, old, other, retired], "ES256") == new
    with pytest.raises(ValueError, match="no active"):
        active_key([other, retired], "ES256")


def test_a_static_hmac_key_has_a_stable_id_that_does_not_reveal_the_secret() -> None:
    secret = b"a configured secret of 32+ bytes!!"
    key = static_hmac_key(secret)
    assert key == static_hmac_key(secret)
    assert key.kid != static_hmac_key(secret + b"!").kid
    assert key.symmetric
    assert secret.decode() not in key.kid
    assert key.signing_key() == secret


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA"])
def test_a_public_jwk_carries_no_private_part(algorithm: str) -> None:
    key: SigningKey = generate(algorithm, time.time())
    jwk = key.jwk()
    assert (jwk["kid"], jwk["alg"], jwk["use"]) == (key.kid, algorithm, "sig")
    assert "d" not in jwk
