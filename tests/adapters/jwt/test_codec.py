"""JwtTokenCodec: RFC 9068 access tokens that round-trip, and every forgery that must not verify."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import get_default_algorithms

from src.adapters.jwt import codec as codec_module
from src.adapters.jwt.codec import JwtTokenCodec, KeyRing
from src.adapters.jwt.keys import ALGORITHMS, SigningKey, generate, static_hmac_key
from src.application.errors import InvalidToken
from src.application.ports import AccessTokenClaims

ISSUER = "https://calc.example"
AUDIENCE = "https://calc.example/mcp"
HMAC_SECRET = b"an hs256 test secret of 32+ bytes!"
# Whole seconds, as in a JWT; a little in the past so that every token is already valid.
NOW = int(time.time()) - 5


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_key(algorithm: str) -> SigningKey:
    return (
        static_hmac_key(HMAC_SECRET) if algorithm == "HS256" else generate(algorithm, time.time())
    )


def codec_for(
    *keys: SigningKey, issuer: str = ISSUER, algorithms: tuple[str, ...] = ALGORITHMS
) -> JwtTokenCodec:
    """A codec whose ring holds ``keys``; the first one signs."""
    ring = KeyRing(lambda: list(keys), algorithm=keys[0].algorithm)
    return JwtTokenCodec(keys=ring, issuer=issuer, algorithms=algorithms)


def claims(**changes: Any) -> AccessTokenClaims:
    values: dict[str, Any] = {
        "client_id": "alice",
        "scopes": frozenset({"calculator", "sse"}),
        "audience": (AUDIENCE,),
        "issued_at": float(NOW),
        "expires_at": float(NOW + 300),
        "token_id": "jti-1",
    }
    return AccessTokenClaims(**{**values, **changes})


def payload(**changes: Any) -> dict[str, Any]:
    """The payload the codec writes for ``claims()``, with ``changes`` (``None`` removes one)."""
    values: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUDIENCE,
        "exp": NOW + 300,
        "iat": NOW,
        "nbf": NOW,
        "jti": "jti-1",
        "client_id": "alice",
        "scope": "calculator sse",
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value is not None}


def signed(key: SigningKey, body: dict[str, Any], **header: Any) -> str:
    """A compact JWS of ``body`` signed by ``key``, the header defaulting to the codec's own."""
    fields = {"alg": key.algorithm, "typ": "at+jwt", "kid": key.kid, **header}
    fields = {name: value for name, value in fields.items() if value is not None}
    signing_input = f"{b64(json.dumps(fields).encode())}.{b64(json.dumps(body).encode())}"
    algorithm = get_default_algorithms()[key.algorithm]
    signature = algorithm.sign(signing_input.encode(), algorithm.prepare_key(key.signing_key()))
    return f"{signing_input}.{b64(signature)}"


def header_of(token: str) -> dict[str, Any]:
    return dict(json.loads(unb64(token.split(".", maxsplit=1)[0])))


@pytest.fixture(scope="module")
def es256() -> SigningKey:
    return generate("ES256", time.time())


@pytest.fixture(scope="module")
def eddsa() -> SigningKey:
    return generate("EdDSA", time.time())


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_token_round_trips_to_its_claims(algorithm: str) -> None:
    codec = codec_for(new_key(algorithm))
    original = claims()
    assert codec.decode(codec.encode(original)) == original


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_fresh_codec_on_the_same_keys_verifies_the_token(algorithm: str) -> None:
    key = new_key(algorithm)
    token = codec_for(key).encode(claims())
    assert codec_for(key).decode(token).client_id == "alice"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_the_header_names_the_access_token_type_the_algorithm_and_the_key(algorithm: str) -> None:
    key = new_key(algorithm)
    header = header_of(codec_for(key).encode(claims()))
    assert header == {"alg": algorithm, "typ": "at+jwt", "kid": key.kid}


def test_the_payload_carries_the_rfc_9068_claims(es256: SigningKey) -> None:
    token = codec_for(es256).encode(claims(scopes=frozenset({"sse", "calculator"})))
    assert json.loads(unb64(token.split(".")[1])) == payload()


def test_several_audiences_round_trip_in_order(es256: SigningKey) -> None:
    codec = codec_for(es256)
    audience = (AUDIENCE, "https://calc.example/docs")
    assert codec.decode(codec.encode(claims(audience=audience))).audience == audience


def test_a_third_party_verifies_the_token_with_the_published_jwk(eddsa: SigningKey) -> None:
    codec = codec_for(eddsa)
    token = codec.encode(claims())
    [jwk] = codec.public_keys()
    verified = jwt.decode(
        token, jwt.PyJWK(jwk).key, algorithms=["EdDSA"], audience=AUDIENCE, issuer=ISSUER
    )
    assert verified["client_id"] == "alice"


def test_public_keys_are_the_asymmetric_jwks_and_never_the_hmac_secret(
    es256: SigningKey, eddsa: SigningKey
) -> None:
    hmac_key = static_hmac_key(HMAC_SECRET)
    jwks = codec_for(es256, eddsa, hmac_key).public_keys()
    by_kid = {jwk["kid"]: jwk for jwk in jwks}
    assert set(by_kid) == {es256.kid, eddsa.kid}
    assert {name: by_kid[es256.kid][name] for name in ("kty", "crv", "alg", "use")} == {
        "kty": "EC",
        "crv": "P-256",
        "alg": "ES256",
        "use": "sig",
    }
    assert {name: by_kid[eddsa.kid][name] for name in ("kty", "crv", "alg", "use")} == {
        "kty": "OKP",
        "crv": "Ed25519",
        "alg": "EdDSA",
        "use": "sig",
    }
    published = json.dumps(jwks)
    assert all("d" not in jwk and "k" not in jwk for jwk in jwks)
    assert hmac_key.material not in published
    assert b64(HMAC_SECRET) not in published


def test_an_hmac_only_codec_publishes_no_keys() -> None:
    assert codec_for(static_hmac_key(HMAC_SECRET)).public_keys() == []


# --- forgeries and misuse: every one is an InvalidToken ---------------------------------------


def test_alg_none_is_refused(es256: SigningKey) -> None:
    codec = codec_for(es256)
    header = b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": es256.kid}).encode())
    body = b64(json.dumps(payload()).encode())
    for token in (f"{header}.{body}.", f"{header}.{body}"):
        with pytest.raises(InvalidToken):
            codec.decode(token)


def test_an_hmac_made_with_the_public_key_is_refused(es256: SigningKey) -> None:
    # The classic confusion attack: HS256 "signed" with the ES256 key's public PEM.
    codec = codec_for(es256, algorithms=("ES256", "HS256"))
    pem = es256.verifying_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "typ": "at+jwt", "kid": es256.kid}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload()).encode())}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken):
        codec.decode(f"{signing_input}.{b64(mac)}")


@pytest.mark.parametrize(
    "change", [{"scope": "calculator sse admin"}, {"sub": "bob", "client_id": "bob"}]
)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_tampered_payload_is_refused(algorithm: str, change: dict[str, str]) -> None:
    codec = codec_for(new_key(algorithm))
    header, body, signature = codec.encode(claims()).split(".")
    forged = {**json.loads(unb64(body)), **change}
    with pytest.raises(InvalidToken):
        codec.decode(f"{header}.{b64(json.dumps(forged).encode())}.{signature}")


def test_a_token_from_another_issuer_is_refused(es256: SigningKey) -> None:
    token = codec_for(es256, issuer="https://evil.example").encode(claims())
    with pytest.raises(InvalidToken):
        codec_for(es256).decode(token)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(payload(exp=NOW - 1), id="expired"),
        pytest.param(payload(nbf=NOW + 3600), id="nbf-in-the-future"),
        pytest.param(payload(iat=NOW + 3600, nbf=NOW + 3600), id="issued-in-the-future"),
        pytest.param(payload(iss="https://evil.example"), id="wrong-iss"),
        pytest.param(payload(iss=None), id="no-iss"),
        pytest.param(payload(exp=None), id="no-exp"),
        pytest.param(payload(nbf=None), id="no-nbf"),
        pytest.param(payload(jti=None), id="no-jti"),
        pytest.param(payload(scope=None), id="no-scope"),
        pytest.param(payload(client_id=None), id="no-client-id"),
        pytest.param(payload(scope=["calculator"]), id="scope-not-a-string"),
        pytest.param(payload(sub="bob"), id="sub-is-not-the-client"),
    ],
)
def test_a_correctly_signed_token_with_bad_claims_is_refused(
    es256: SigningKey, body: dict[str, Any]
) -> None:
    with pytest.raises(InvalidToken):
        codec_for(es256).decode(signed(es256, body))


def test_an_expired_token_is_refused_even_after_it_was_verified(
    es256: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    codec = codec_for(es256)
    token = codec.encode(claims(expires_at=float(NOW + 60)))
    assert codec.decode(token).client_id == "alice"
    later = NOW + 120.0
    monkeypatch.setattr(
        codec_module, "time", SimpleNamespace(time=lambda: later, monotonic=time.monotonic)
    )
    with pytest.raises(InvalidToken, match="expired"):
        codec.decode(token)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param({"kid": "no-such-key"}, id="unknown-kid"),
        pytest.param({"kid": None}, id="missing-kid"),
        pytest.param({"typ": None}, id="missing-typ"),
        pytest.param({"typ": "JWT"}, id="typ-jwt"),
        pytest.param({"typ": "id_token+jwt"}, id="typ-other"),
        pytest.param({"alg": "ES384"}, id="alg-not-the-keys"),
    ],
)
def test_a_bad_header_is_refused(es256: SigningKey, header: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        codec_for(es256).decode(signed(es256, payload(), **header))


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt"])
def test_the_access_token_type_is_matched_without_case(es256: SigningKey, typ: str) -> None:
    assert codec_for(es256).decode(signed(es256, payload(), typ=typ)).client_id == "alice"


def test_a_key_of_another_issuer_with_a_known_kid_is_refused(es256: SigningKey) -> None:
    impostor = SigningKey(
        kid=es256.kid,
        algorithm="ES256",
        created_at=0.0,
        material=generate("ES256", time.time()).material,
    )
    with pytest.raises(InvalidToken):
        codec_for(es256).decode(signed(impostor, payload()))


def test_an_algorithm_outside_the_allow_list_is_refused(eddsa: SigningKey) -> None:
    token = codec_for(eddsa).encode(claims())
    with pytest.raises(InvalidToken):
        codec_for(eddsa, algorithms=("ES256",)).decode(token)


def test_a_token_signed_with_one_keys_algorithm_under_anothers_kid_is_refused(
    es256: SigningKey, eddsa: SigningKey
) -> None:
    with pytest.raises(InvalidToken):
        codec_for(es256, eddsa).decode(signed(eddsa, payload(), kid=es256.kid))


@pytest.mark.parametrize(
    "token", ["", "garbage", "a.b.c", "a.b", "....", "eyJhbGciOiJFUzI1NiJ9.e30.AAAA"]
)
def test_a_malformed_token_is_refused(es256: SigningKey, token: str) -> None:
    with pytest.raises(InvalidToken):
        codec_for(es256).decode(token)
