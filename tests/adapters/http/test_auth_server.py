"""The authorization server under attack, over HTTP: ES256 keys behind a proxy-style public URL.

Every test here runs the app from the real factory with ES256 signing keys generated in the
test's data directory, ``CALCMCP_PUBLIC_URL`` and ``CALCMCP_ISSUER`` set as behind a reverse
proxy, and a few extra clients (the module overrides the conftest's ``settings``). It adds to
``test_token.py``, which runs the HS256 configuration: the RFC 6749 §5.2 errors of this
configuration, forgeries against an asymmetric key, discovery, revocation and introspection on
the wire, rate limits, the audit trail, and a property over any form body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar.testing import AsyncTestClient

from src.adapters.jwt.keys import KEY_FILE
from src.adapters.logs import ConsoleFormatter, JsonLineFormatter
from src.application.ports import AccessTokenClaims
from src.bootstrap import Container, Settings, create_app
from tests.adapters.http.conftest import (
    CALC_ONLY_ID,
    CALC_ONLY_SECRET,
    DEV_ID,
    DEV_SECRET,
    EXTRA_CLIENTS,
    FORM,
    JWT_SECRET,
    TIMEOUT,
    FixedClock,
    GetToken,
    basic,
    bearer,
    make_container,
    make_settings,
)

pytestmark = pytest.mark.anyio

PUBLIC = "https://calc.example.com/api"  # as a reverse proxy publishes it: https, a path prefix
ISSUER = "https://login.example.com/realms/calc"
NO_SCOPE_ID, NO_SCOPE_SECRET = "no-scopes", "no-scopes-secret-0123456789"
OTHER_ID, OTHER_SECRET = "other-client", "other-secret-kept-out-of-every-log-0123"
CLIENTS = [
    *EXTRA_CLIENTS,
    {"client_id": NO_SCOPE_ID, "client_secret": NO_SCOPE_SECRET, "scopes": []},
    {"client_id": OTHER_ID, "client_secret": OTHER_SECRET, "scopes": ["calculator", "sse"]},
]
ADD = "/calculator/add?a=1&b=2"
BASIC_CHALLENGE = 'Basic realm="calcmcp"'

INVALID = "the access token is invalid"
FOREIGN_KEY = "the access token is not signed by a key of this server"
NOT_FOR_US = "the access token is not meant for this resource"
EXPIRED = "the access token has expired"
NOT_YET = "the access token is not valid yet"
REVOKED = "the access token has been revoked"
AUTH_FAILED = "client authentication failed"


def server_settings(data_dir: Path, **overrides: Any) -> Settings:
    """ES256 keys in ``data_dir``, proxy-style URLs, and this module's clients."""
    values: dict[str, Any] = {
        "jwt_algorithm": "ES256",
        "jwt_secret": "",
        "public_url": PUBLIC,
        "issuer": ISSUER,
        "clients": json.dumps(CLIENTS),
    }
    return make_settings(data_dir, **{**values, **overrides})


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Overrides the conftest's HS256 settings: this whole module runs on ES256."""
    return server_settings(tmp_path)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[AsyncTestClient[Any]]:
    """A test client for an app of the test's own settings."""
    app = create_app(make_container(settings, FixedClock()))
    async with AsyncTestClient(app=app, raise_server_exceptions=False, timeout=TIMEOUT) as test:
        yield test


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def segment(data: dict[str, Any]) -> str:
    """One base64url JSON segment of a JWS."""
    return b64(json.dumps(data, separators=(",", ":")).encode())


def form(**fields: str) -> dict[str, str]:
    """A client-credentials form for the development client, with ``fields`` added or replaced."""
    return {
        "grant_type": "client_credentials",
        "client_id": DEV_ID,
        "client_secret": DEV_SECRET,
        **fields,
    }


def assert_oauth_error(response: Any, status: int, error: str, description: str) -> None:
    """An RFC 6749 §5.2 error: status, JSON body, never cached, Basic challenge on 401."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": error, "error_description": description}
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert response.headers.get("www-authenticate") == (BASIC_CHALLENGE if status == 401 else None)


def assert_invalid_token(response: Any, description: str) -> None:
    """A 401 with an RFC 6750 ``invalid_token`` challenge."""
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="calcmcp", error="invalid_token", error_description="{description}"'
    )
    assert response.json()["detail"] == description


async def verified_claims(client: AsyncTestClient[Any], token: str) -> dict[str, Any]:
    """``token``'s claims, checked as a third party would: keys from the metadata's jwks_uri."""
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    jwks_path = metadata["jwks_uri"].removeprefix(PUBLIC)
    key_set = jwt.PyJWKSet.from_dict((await client.get(jwks_path)).json())
    key = key_set[jwt.get_unverified_header(token)["kid"]]
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["ES256"], audience=PUBLIC, issuer=metadata["issuer"]
    )
    return claims


# --- RFC 6749 §5.2 errors, and RFC 8707 targets --------------------------------------------


def body(*pairs: tuple[str, str]) -> bytes:
    return urlencode(pairs).encode()


CREDENTIALS = (("client_id", DEV_ID), ("client_secret", DEV_SECRET))
GRANT = ("grant_type", "client_credentials")
NOT_SERVED = "the requested resource is not served by this server"
ONLY_CLIENT_CREDENTIALS = "only the client_credentials grant type is supported"
NO_SCOPE = "this client may not be issued any scope"


def refusal(
    name: str,
    expected: tuple[int, str, str],
    *pairs: tuple[str, str],
    authorization: str | None = None,
    raw: bytes = b"",
) -> Any:
    """A token request (form ``pairs`` then ``raw`` bytes) and the error it must get."""
    return pytest.param(body(*pairs) + raw, authorization, expected, id=name)


def not_served(name: str, *resources: str) -> Any:
    """A request for ``resources`` by the development client: ``invalid_target``."""
    named = [("resource", resource) for resource in resources]
    return refusal(name, (400, "invalid_target", NOT_SERVED), GRANT, *CREDENTIALS, *named)


TOKEN_ERRORS = [
    refusal("missing-grant-type", (400, "invalid_request", "grant_type is required"), *CREDENTIALS),
    refusal(
        "repeated-grant-type-with-an-encoded-name",
        (400, "invalid_request", "parameter 'grant_type' is repeated"),
        GRANT,
        *CREDENTIALS,
        raw=b"&grant%5Ftype=client_credentials",
    ),
    refusal(
        "repeated-client-id",
        (400, "invalid_request", "parameter 'client_id' is repeated"),
        GRANT,
        *CREDENTIALS,
        ("client_id", OTHER_ID),
    ),
    refusal(
        "basic-and-post-at-once",
        (400, "invalid_request", "use one client authentication method, not Basic and the form"),
        GRANT,
        *CREDENTIALS,
        authorization=basic(OTHER_ID, OTHER_SECRET),
    ),
    refusal(
        "basic-wrong-secret",
        (401, "invalid_client", AUTH_FAILED),
        GRANT,
        authorization=basic(DEV_ID, "wrong"),
    ),
    refusal(
        "post-unknown-client",
        (401, "invalid_client", AUTH_FAILED),
        GRANT,
        ("client_id", "nobody"),
        ("client_secret", "x"),
    ),
    refusal(
        "jwt-bearer-grant",
        (400, "unsupported_grant_type", ONLY_CLIENT_CREDENTIALS),
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        *CREDENTIALS,
    ),
    refusal(
        "password-grant",
        (400, "unsupported_grant_type", ONLY_CLIENT_CREDENTIALS),
        ("grant_type", "password"),
        ("username", "u"),
        ("password", "p"),
        *CREDENTIALS,
    ),
    refusal(
        "unknown-scope",
        (400, "invalid_scope", "unknown scope: openid"),
        GRANT,
        *CREDENTIALS,
        ("scope", "calculator openid"),
    ),
    refusal(
        "client-without-scopes",
        (400, "unauthorized_client", NO_SCOPE),
        GRANT,
        ("client_id", NO_SCOPE_ID),
        ("client_secret", NO_SCOPE_SECRET),
    ),
    refusal(
        "client-without-scopes-asking-for-one",
        (400, "unauthorized_client", NO_SCOPE),
        GRANT,
        ("scope", "calculator"),
        authorization=basic(NO_SCOPE_ID, NO_SCOPE_SECRET),
    ),
    not_served("resource-with-a-fragment", f"{PUBLIC}#calc"),
    not_served("resource-another-path", "https://calc.example.com/x"),
    not_served("resource-plain-http", "http://calc.example.com/api"),
    not_served("resource-relative", "/api"),
    not_served("resource-the-issuer", ISSUER),
    not_served("one-resource-of-two-not-served", PUBLIC, "https://evil.example/api"),
]


@pytest.mark.parametrize(("content", "authorization", "expected"), TOKEN_ERRORS)
async def test_every_token_error_is_an_rfc6749_error_response(
    client: AsyncTestClient[Any],
    content: bytes,
    authorization: str | None,
    expected: tuple[int, str, str],
) -> None:
    headers = {**FORM, **({"Authorization": authorization} if authorization else {})}

    response = await client.post("/token", content=content, headers=headers)

    assert_oauth_error(response, *expected)


async def test_a_repeated_resource_naming_this_server_is_one_audience(
    client: AsyncTestClient[Any],
) -> None:
    content = body(
        GRANT, *CREDENTIALS, ("resource", PUBLIC), ("resource", "HTTPS://CALC.EXAMPLE.COM/api/")
    )

    response = await client.post("/token", content=content, headers=FORM)

    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert (await verified_claims(client, token))["aud"] == PUBLIC
    assert (await client.post(ADD, headers=bearer(token))).status_code == 200


# Guards a bug seen at ce423cb: urlsplit() raises ValueError for a malformed authority (an
# unbalanced IPv6 bracket, a host that NFKC-normalises to a delimiter) and /token answered 500.
@pytest.mark.parametrize(
    "resource",
    ["https://[::1/api", "https://calc.example.com]/api", "https://calc.example.com\uff03x/api"],
    ids=["open-bracket", "close-bracket", "nfkc-delimiter"],
)
async def test_a_resource_with_a_malformed_authority_is_invalid_target(
    client: AsyncTestClient[Any], resource: str
) -> None:
    response = await client.post("/token", data=form(resource=resource))

    assert_oauth_error(response, 400, "invalid_target", NOT_SERVED)


# --- JWT attacks at the resource (POST /calculator/add) ------------------------------------


@dataclass(frozen=True)
class ServerKey:
    """The server's signing key, as a test reaches into its key file and its JWK Set."""

    kid: str
    private_pem: str
    public_pem: bytes
    jwk: dict[str, Any]


@pytest.fixture
async def server_key(client: AsyncTestClient[Any], settings: Settings) -> ServerKey:
    """The one ES256 key the server signs with (its JWKS request creates the key file)."""
    [jwk] = (await client.get("/.well-known/jwks.json")).json()["keys"]
    stored = json.loads((Path(settings.data_dir) / KEY_FILE).read_text())["keys"]
    [entry] = [key for key in stored if key["kid"] == jwk["kid"]]
    public = jwt.PyJWK(jwk).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ServerKey(kid=jwk["kid"], private_pem=entry["material"], public_pem=public, jwk=jwk)


def good_claims(**changes: Any) -> dict[str, Any]:
    """Claims the server accepts; ``changes`` override them (``None`` removes one)."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "sub": DEV_ID,
        "aud": PUBLIC,
        "exp": now + 600,
        "iat": now - 5,
        "nbf": now - 5,
        "jti": "hand-made",
        "client_id": DEV_ID,
        "scope": "calculator sse",
    }
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not None}


def es256(payload: dict[str, Any], key: Any, kid: str | None, **header: Any) -> str:
    """A token signed with ``key`` (a PEM or a cryptography key); ``header`` adds fields."""
    headers = {"typ": "at+jwt", **({"kid": kid} if kid else {}), **header}
    return jwt.encode(payload, key, algorithm="ES256", headers=headers)


def hs256_by_hand(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    """An HMAC token built by hand (pyjwt refuses to use a PEM public key as an HMAC secret)."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(mac)}"


def with_payload(token: str, **changes: Any) -> str:
    """``token`` with its payload edited and its signature kept."""
    header, payload, signature = token.split(".")
    claims = {**json.loads(unb64(payload)), **changes}
    return f"{header}.{segment(claims)}.{signature}"


ATTACKER = ec.generate_private_key(ec.SECP256R1())
ATTACKER_JWK = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ATTACKER.public_key()))
Forge = Callable[[ServerKey, str], str]
"""Builds a forged token from the server's key and a genuine token of the server's."""


def unsigned(alg: str, kid: str, payload: str, signature: str = "") -> str:
    """A token whose header claims ``alg``, over an encoded ``payload``, with ``signature``."""
    return f"{segment({'alg': alg, 'typ': 'at+jwt', 'kid': kid})}.{payload}.{signature}"


def hmac_token(secret: bytes, kid: str | None) -> str:
    """An HS256 token over good claims, MACed with ``secret`` (the server's public key)."""
    header = {"alg": "HS256", "typ": "at+jwt", **({"kid": kid} if kid else {})}
    return hs256_by_hand(header, good_claims(), secret)


def by_server(**changes: Any) -> Forge:
    """Claims ``changes``, signed with the server's own key under its own kid."""
    return lambda key, _: es256(good_claims(**changes), key.private_pem, key.kid)


NOW = int(time.time())
FORGERIES: list[tuple[str, Forge, str]] = [
    ("alg-none", lambda k, t: unsigned("none", k.kid, segment(good_claims())), FOREIGN_KEY),
    ("alg-None-with-a-real-signature",
     lambda k, t: unsigned("None", k.kid, t.split(".")[1], t.split(".")[2]), FOREIGN_KEY),
    ("hs256-keyed-with-the-public-pem",
     lambda k, t: hmac_token(k.public_pem, k.kid), FOREIGN_KEY),
    ("hs256-keyed-with-the-public-pem-no-kid",
     lambda k, t: hmac_token(k.public_pem, None), FOREIGN_KEY),
    ("hs256-keyed-with-the-jwk-json",
     lambda k, t: hmac_token(json.dumps(k.jwk).encode(), k.kid), FOREIGN_KEY),
    ("tampered-client-id", lambda k, t: with_payload(t, client_id=OTHER_ID, sub=OTHER_ID),
     INVALID),
    ("tampered-expiry", lambda k, t: with_payload(t, exp=NOW + 10**6), INVALID),
    ("signature-stripped", lambda k, t: t.rsplit(".", 1)[0] + ".", INVALID),
    ("all-zero-ecdsa-signature", lambda k, t: t.rsplit(".", 1)[0] + "." + b64(bytes(64)),
     INVALID),
    ("wrong-issuer", by_server(iss="https://evil.example"), INVALID),
    ("public-url-as-issuer", by_server(iss=PUBLIC), INVALID),
    ("no-issuer", by_server(iss=None), INVALID),
    ("expired", by_server(iat=NOW - 7200, nbf=NOW - 7200, exp=NOW - 3600), EXPIRED),
    ("not-yet-valid", by_server(nbf=NOW + 600), NOT_YET),
    ("unknown-kid-right-key",
     lambda k, t: es256(good_claims(), k.private_pem, "0123456789abcdef"), FOREIGN_KEY),
    ("no-kid-right-key", lambda k, t: es256(good_claims(), k.private_pem, None), FOREIGN_KEY),
    ("attacker-key-under-the-server-kid", lambda k, t: es256(good_claims(), ATTACKER, k.kid),
     INVALID),
    ("attacker-key-embedded-as-jwk",
     lambda k, t: es256(good_claims(), ATTACKER, "attacker", jwk=ATTACKER_JWK), FOREIGN_KEY),
    ("attacker-key-embedded-under-the-server-kid",
     lambda k, t: es256(good_claims(), ATTACKER, k.kid, jwk=ATTACKER_JWK), INVALID),
    ("attacker-jku", lambda k, t: es256(
        good_claims(), ATTACKER, "attacker", jku="https://evil.example/jwks.json"), FOREIGN_KEY),
]  # fmt: skip


async def test_a_hand_signed_es256_token_with_good_claims_is_accepted(
    client: AsyncTestClient[Any], server_key: ServerKey
) -> None:
    # the control for the forgeries: only what each one changes makes it fail
    token = es256(good_claims(), server_key.private_pem, server_key.kid)

    response = await client.post(ADD, headers=bearer(token))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("forge", "description"),
    [pytest.param(forge, description, id=name) for name, forge, description in FORGERIES],
)
async def test_a_forged_token_is_invalid_token(
    client: AsyncTestClient[Any],
    server_key: ServerKey,
    get_token: GetToken,
    forge: Forge,
    description: str,
) -> None:
    genuine = await get_token()

    response = await client.post(ADD, headers=bearer(forge(server_key, genuine)))

    assert_invalid_token(response, description)
    assert (await client.post(ADD, headers=bearer(genuine))).status_code == 200


def minted(container: Container, **changes: Any) -> str:
    """A token signed by the server's own codec (the right key), with ``changes``."""
    now = time.time()
    values: dict[str, Any] = {
        "client_id": DEV_ID,
        "scopes": frozenset({"calculator"}),
        "audience": (PUBLIC,),
        "issued_at": now - 5,
        "expires_at": now + 600,
        "token_id": "minted",
    }
    return container.token_codec().encode(AccessTokenClaims(**{**values, **changes}))


@pytest.mark.parametrize(
    ("changes", "description"),
    [
        ({}, None),
        ({"audience": ("https://other.example/api",)}, NOT_FOR_US),
        ({"audience": (ISSUER,)}, NOT_FOR_US),
        ({"audience": ("https://calc.example.com/api/mcp",)}, NOT_FOR_US),
        ({"issued_at": time.time() - 7200, "expires_at": time.time() - 3600}, EXPIRED),
    ],
    ids=["control", "another-resource", "the-issuer", "a-sub-path", "expired"],
)
async def test_a_token_signed_with_the_right_key_for_the_wrong_use_is_invalid_token(
    client: AsyncTestClient[Any],
    container: Container,
    changes: dict[str, Any],
    description: str | None,
) -> None:
    response = await client.post(ADD, headers=bearer(minted(container, **changes)))

    if description is None:
        assert response.status_code == 200, response.text
    else:
        assert_invalid_token(response, description)


# Guards a bug seen at ce423cb: tokens carried the canonical (lower-cased) URL in `aud`, while
# the resource compared against CALCMCP_PUBLIC_URL as written, so every token was refused.
async def test_a_mixed_case_public_url_still_accepts_its_own_tokens(tmp_path: Path) -> None:
    async with serving(server_settings(tmp_path, public_url="https://Calc.Example.com/api")) as c:
        token = (await c.post("/token", data=form())).json()["access_token"]
        response = await c.post(ADD, headers=bearer(token))

    assert response.status_code == 200, response.text


# --- discovery (RFC 8414) and the JWK Set ---------------------------------------------------


async def test_metadata_advertises_the_configured_issuer_and_public_urls(
    client: AsyncTestClient[Any],
) -> None:
    response = await client.get("/.well-known/oauth-authorization-server")

    assert response.status_code == 200
    metadata = response.json()
    expected = {
        "issuer": ISSUER,
        "token_endpoint": f"{PUBLIC}/token",
        "jwks_uri": f"{PUBLIC}/.well-known/jwks.json",
        "authorization_endpoint": f"{PUBLIC}/authorize",
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": ["calculator", "sse"],
        "revocation_endpoint": f"{PUBLIC}/revoke",
        "introspection_endpoint": f"{PUBLIC}/introspect",
    }
    assert {name: metadata[name] for name in expected} == expected
    for field in (
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ):
        assert {"client_secret_basic", "client_secret_post"} <= set(metadata[field]), field


async def test_without_an_issuer_setting_the_issuer_is_the_public_url(tmp_path: Path) -> None:
    async with serving(server_settings(tmp_path, issuer="")) as test:
        metadata = (await test.get("/.well-known/oauth-authorization-server")).json()
        token = (await test.post("/token", data=form())).json()["access_token"]

    assert metadata["issuer"] == PUBLIC
    assert jwt.decode(token, options={"verify_signature": False})["iss"] == PUBLIC


async def test_the_jwks_verifies_a_fresh_token_and_holds_public_keys_only(
    client: AsyncTestClient[Any], get_token: GetToken, settings: Settings
) -> None:
    token = await get_token()

    claims = await verified_claims(client, token)

    assert (claims["iss"], claims["aud"], claims["client_id"]) == (ISSUER, PUBLIC, DEV_ID)
    [key] = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert {key[name] for name in ("kty", "crv", "alg", "use")} >= {"EC", "P-256", "ES256", "sig"}
    assert key["kid"] == jwt.get_unverified_header(token)["kid"]
    assert "d" not in key
    [stored] = json.loads((Path(settings.data_dir) / KEY_FILE).read_text())["keys"]
    assert stored["material"] not in json.dumps(key)


@pytest.mark.parametrize("secret", [JWT_SECRET, ""], ids=["configured-secret", "key-file"])
async def test_an_hs256_configuration_publishes_no_key(tmp_path: Path, secret: str) -> None:
    settings = server_settings(tmp_path, jwt_algorithm="HS256", jwt_secret=secret)
    async with serving(settings) as test:
        assert (await test.post("/token", data=form())).status_code == 200
        response = await test.get("/.well-known/jwks.json")

    assert response.status_code == 200
    assert response.json() == {"keys": []}
    if secret:
        assert b64(secret.encode()) not in response.text
    else:
        [stored] = json.loads((tmp_path / KEY_FILE).read_text())["keys"]
        assert stored["algorithm"] == "HS256"


# --- revocation (RFC 7009) and introspection (RFC 7662) -------------------------------------


Auth = Callable[[str, str], tuple[dict[str, str], dict[str, str]]]


def basic_auth(client_id: str, secret: str) -> tuple[dict[str, str], dict[str, str]]:
    return {"Authorization": basic(client_id, secret)}, {}


def post_auth(client_id: str, secret: str) -> tuple[dict[str, str], dict[str, str]]:
    return {}, {"client_id": client_id, "client_secret": secret}


AUTH_METHODS = [pytest.param(basic_auth, id="basic"), pytest.param(post_auth, id="post")]


async def call(
    client: AsyncTestClient[Any], path: str, auth: Auth, client_id: str, secret: str, **fields: str
) -> Any:
    """POST a client-authenticated form to ``path``."""
    headers, credentials = auth(client_id, secret)
    return await client.post(path, data={**credentials, **fields}, headers=headers)


@pytest.mark.parametrize("auth", AUTH_METHODS)
async def test_introspection_of_an_own_token_shows_its_claims(
    client: AsyncTestClient[Any], get_token: GetToken, auth: Auth
) -> None:
    token = await get_token(scope="calculator")

    response = await call(client, "/introspect", auth, DEV_ID, DEV_SECRET, token=token)

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    claims = await verified_claims(client, token)
    assert body == {
        "active": True,
        "scope": "calculator",
        "client_id": DEV_ID,
        "token_type": "Bearer",
        "exp": claims["exp"],
        "iat": claims["iat"],
        "nbf": claims["nbf"],
        "sub": DEV_ID,
        "aud": [PUBLIC],
        "iss": ISSUER,
        "jti": claims["jti"],
    }


@pytest.mark.parametrize("auth", AUTH_METHODS)
async def test_a_revoked_token_is_inactive_and_the_clients_other_tokens_are_not(
    client: AsyncTestClient[Any], get_token: GetToken, auth: Auth
) -> None:
    token = await get_token()
    kept = await get_token()

    revoked = await call(client, "/revoke", auth, DEV_ID, DEV_SECRET, token=token)

    assert revoked.status_code == 200
    assert revoked.headers["cache-control"] == "no-store"
    introspected = await call(client, "/introspect", auth, DEV_ID, DEV_SECRET, token=token)
    assert introspected.json() == {"active": False}
    still = await call(client, "/introspect", auth, DEV_ID, DEV_SECRET, token=kept)
    assert still.json()["active"] is True
    assert (await client.post(ADD, headers=bearer(kept))).status_code == 200


# Guards a bug seen at ce423cb: Litestar deep-copies a registered Router, and with it a container
# provider in the bearer middleware's arguments, so the resource side had its own, empty,
# revocation list and revoked tokens kept working.
@pytest.mark.parametrize("used_before", [True, False], ids=["verified-and-cached", "fresh"])
async def test_a_revoked_token_is_refused_at_the_resource(
    client: AsyncTestClient[Any], get_token: GetToken, used_before: bool
) -> None:
    token = await get_token()
    if used_before:
        assert (await client.post(ADD, headers=bearer(token))).status_code == 200

    revoked = await call(client, "/revoke", basic_auth, DEV_ID, DEV_SECRET, token=token)

    assert revoked.status_code == 200
    assert_invalid_token(await client.post(ADD, headers=bearer(token)), REVOKED)


async def test_revoking_twice_or_with_an_unknown_hint_is_fine(
    client: AsyncTestClient[Any], get_token: GetToken
) -> None:
    token = await get_token()

    first = await call(
        client, "/revoke", post_auth, DEV_ID, DEV_SECRET, token=token, token_type_hint="x"
    )
    second = await call(client, "/revoke", basic_auth, DEV_ID, DEV_SECRET, token=token)

    assert (first.status_code, second.status_code) == (200, 200)
    introspected = await call(client, "/introspect", basic_auth, DEV_ID, DEV_SECRET, token=token)
    assert introspected.json() == {"active": False}


@pytest.mark.parametrize("garbage", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
async def test_revoking_garbage_is_accepted_silently(
    client: AsyncTestClient[Any], garbage: str
) -> None:
    response = await call(client, "/revoke", basic_auth, DEV_ID, DEV_SECRET, token=garbage)

    assert response.status_code == 200
    inactive = await call(client, "/introspect", basic_auth, DEV_ID, DEV_SECRET, token=garbage)
    assert inactive.json() == {"active": False}


async def test_another_clients_token_cannot_be_revoked_or_introspected(
    client: AsyncTestClient[Any], get_token: GetToken
) -> None:
    token = await get_token()

    revoked = await call(client, "/revoke", basic_auth, OTHER_ID, OTHER_SECRET, token=token)
    introspected = await call(client, "/introspect", post_auth, OTHER_ID, OTHER_SECRET, token=token)

    assert_oauth_error(
        revoked, 400, "unauthorized_client", "a client may revoke only its own tokens"
    )
    assert introspected.status_code == 200
    assert introspected.json() == {"active": False}
    assert (await client.post(ADD, headers=bearer(token))).status_code == 200


@pytest.mark.parametrize("path", ["/revoke", "/introspect"])
async def test_a_missing_token_parameter_is_invalid_request(
    client: AsyncTestClient[Any], path: str
) -> None:
    response = await call(client, path, basic_auth, DEV_ID, DEV_SECRET, token_type_hint="x")

    assert_oauth_error(response, 400, "invalid_request", "token is required")


@pytest.mark.parametrize("path", ["/revoke", "/introspect"])
@pytest.mark.parametrize("auth", AUTH_METHODS)
async def test_a_bad_client_is_invalid_client_and_changes_nothing(
    client: AsyncTestClient[Any], get_token: GetToken, path: str, auth: Auth
) -> None:
    token = await get_token()

    response = await call(client, path, auth, DEV_ID, "wrong-secret", token=token)

    assert_oauth_error(response, 401, "invalid_client", AUTH_FAILED)
    assert (await client.post(ADD, headers=bearer(token))).status_code == 200


# --- rate limits -----------------------------------------------------------------------------


async def test_a_burst_of_wrong_secrets_is_slowed_down_and_the_right_one_gets_in_later(
    tmp_path: Path,
) -> None:
    # 3 in a burst, 5 a second: a failure leaves the bucket in debt for about 0.6 s
    async with serving(server_settings(tmp_path, token_burst=3.0, token_rate=5.0)) as test:
        wrong = [await test.post("/token", data=form(client_secret=f"guess-{n}")) for n in range(6)]
        refused = [response for response in wrong if response.status_code == 429]
        assert refused, [response.status_code for response in wrong]
        await anyio.sleep(int(refused[-1].headers["retry-after"]))
        right = await test.post("/token", data=form())

    assert {response.status_code for response in wrong} == {401, 429}
    for response in refused:
        assert 1 <= int(response.headers["retry-after"]) <= 2
        assert response.headers["cache-control"] == "no-store"
        assert response.json()["error"] == "slow_down"
        assert set(response.json()) <= {"error", "error_description"}
    assert right.status_code == 200, right.text


@asynccontextmanager
async def from_address(app: Any, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client whose requests come from ``address``."""
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def test_limits_apply_per_address_and_per_client_id(tmp_path: Path) -> None:
    # a burst of 3 that (almost) never refills: one failure (cost 5) empties a bucket
    settings = server_settings(tmp_path, token_burst=3.0, token_rate=0.01)
    app = create_app(make_container(settings, FixedClock()))
    async with (
        from_address(app, "192.0.2.1") as guesser,
        from_address(app, "192.0.2.2") as neighbour,
        from_address(app, "192.0.2.3") as elsewhere,
    ):
        guess = await guesser.post("/token", data=form(client_id=CALC_ONLY_ID, client_secret="x"))
        other_address = await neighbour.post("/token", data=form())
        same_address = await guesser.post("/token", data=form())
        same_client = await elsewhere.post(
            "/token", data=form(client_id=CALC_ONLY_ID, client_secret=CALC_ONLY_SECRET)
        )

    assert guess.status_code == 401
    assert other_address.status_code == 200  # another address, another client: untouched
    # another client from the guessing address shares that address's bucket
    assert same_address.status_code == 429
    assert same_address.json()["error"] == "slow_down"
    # and the guessed-at client id is limited from every address
    assert same_client.status_code == 429


# --- the audit trail -------------------------------------------------------------------------


def audit_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "calcmcp.audit"]


async def one_audit_record(
    caplog: pytest.LogCaptureFixture, request: Any
) -> tuple[Any, logging.LogRecord]:
    """Run ``request``; it must log exactly one audit record."""
    caplog.clear()
    response = await request
    records = audit_records(caplog)
    assert len(records) == 1, [record.__dict__.get("fields") for record in records]
    return response, records[0]


def assert_reveals_nothing(record: logging.LogRecord, *secrets: str) -> None:
    """No secret in the record's message, fields or any formatted form of it."""
    texts = [
        record.getMessage(),
        repr(record.__dict__),
        JsonLineFormatter().format(record),
        ConsoleFormatter().format(record),
    ]
    for secret in secrets:
        for text in texts:
            assert secret not in text


async def test_each_security_event_is_one_audit_record_without_secrets(
    client: AsyncTestClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="calcmcp.audit")
    guess = "wrong-guess-of-the-other-secret"
    auth = {"Authorization": basic(OTHER_ID, OTHER_SECRET)}

    _, refused = await one_audit_record(
        caplog, client.post("/token", data=form(client_id=OTHER_ID, client_secret=guess))
    )
    granted, issued = await one_audit_record(
        caplog, client.post("/token", data={"grant_type": "client_credentials"}, headers=auth)
    )
    token = granted.json()["access_token"]
    jti = jwt.decode(token, options={"verify_signature": False})["jti"]
    _, introspected = await one_audit_record(
        caplog, client.post("/introspect", data={"token": token}, headers=auth)
    )
    _, revoked = await one_audit_record(
        caplog, client.post("/revoke", data={"token": token}, headers=auth)
    )

    fields = [record.__dict__["fields"] for record in (refused, issued, introspected, revoked)]
    assert [f["event"] for f in fields] == [
        "token.refused",
        "token.issued",
        "introspect.active",
        "revoke.revoked",
    ]
    assert {f["client_id"] for f in fields} == {OTHER_ID}
    assert fields[0]["reason"] == "InvalidClient"
    assert fields[1]["scopes"] == ["calculator", "sse"]
    assert [f.get("token_id") for f in fields[1:]] == [jti, jti, jti]
    for record in (refused, issued, introspected, revoked):
        assert_reveals_nothing(record, OTHER_SECRET, guess, token, token.split(".")[2])


@pytest.mark.parametrize(
    ("path", "event"),
    [
        ("/token", "token.refused"),
        ("/revoke", "revoke.refused"),
        ("/introspect", "introspect.refused"),
    ],
)
async def test_a_refusal_on_every_endpoint_is_audited_with_its_reason(
    client: AsyncTestClient[Any], caplog: pytest.LogCaptureFixture, path: str, event: str
) -> None:
    caplog.set_level(logging.INFO, logger="calcmcp.audit")
    data = form(client_secret="bad-secret-value", token="some-token-value")

    _, record = await one_audit_record(caplog, client.post(path, data=data))

    fields = record.__dict__["fields"]
    assert (fields["event"], fields["client_id"], fields["reason"]) == (
        event,
        DEV_ID,
        "InvalidClient",
    )
    assert_reveals_nothing(record, "bad-secret-value", "some-token-value")


@pytest.mark.parametrize("path", ["/token", "/revoke", "/introspect"])
async def test_a_claimed_id_that_names_no_client_is_logged_as_a_fingerprint_only(
    client: AsyncTestClient[Any], caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.INFO, logger="calcmcp.audit")
    pasted = "a-secret-pasted-into-the-id-field"  # what a confused client may send as its id
    data = form(client_id=pasted, client_secret="whatever", token="some-token-value")

    _, first = await one_audit_record(caplog, client.post(path, data=data))
    _, again = await one_audit_record(caplog, client.post(path, data=data))

    claimed = first.__dict__["fields"]["client_id"]
    assert claimed.startswith("unregistered:")
    assert len(claimed) == len("unregistered:") + 12
    assert again.__dict__["fields"]["client_id"] == claimed  # repeated attempts can be matched
    assert_reveals_nothing(first, pasted, "whatever", "some-token-value")


async def test_an_audit_record_carries_the_request_id(
    client: AsyncTestClient[Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="calcmcp.audit")

    _, given = await one_audit_record(
        caplog, client.post("/token", data=form(), headers={"X-Request-ID": "req-42"})
    )
    _, generated = await one_audit_record(caplog, client.post("/token", data=form()))

    assert given.__dict__["fields"]["request_id"] == "req-42"
    assert generated.__dict__["fields"]["request_id"] not in ("", "req-42")


# --- whatever form body arrives at /token -----------------------------------------------------

OAUTH_CODES = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
    "invalid_target",
    "slow_down",
}
NAMES = ["grant_type", "client_id", "client_secret", "scope", "resource", "audience", "Grant_Type"]
VALUES = [
    "client_credentials",
    "password",
    DEV_ID,
    DEV_SECRET,
    NO_SCOPE_ID,
    NO_SCOPE_SECRET,
    "calculator",
    "sse",
    "calculator sse admin",
    PUBLIC,
    f"{PUBLIC}#x",
    "urn:x",
    "",
]
form_fields = st.dictionaries(
    st.one_of(st.sampled_from(NAMES), st.text(max_size=20)),
    st.one_of(st.sampled_from(VALUES), st.text(max_size=40)),
    max_size=8,
)
PROPERTY = hypothesis_settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_token_or_oauth_error(response: Any) -> None:
    """A token response (RFC 6749 §5.1) or an error response (§5.2), never anything else."""
    assert response.status_code in (200, 400, 401, 429), response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    if response.status_code == 200:
        assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
        assert body["token_type"] == "Bearer"
        assert isinstance(body["expires_in"], int)
        assert body["expires_in"] > 0
        assert set(body["scope"].split()) <= {"calculator", "sse"}
    else:
        assert set(body) <= {"error", "error_description"}
        assert body["error"] in OAUTH_CODES
        assert isinstance(body.get("error_description", ""), str)


@PROPERTY
@given(fields=form_fields)
async def test_any_form_gets_a_token_or_an_oauth_error(
    client: AsyncTestClient[Any], fields: dict[str, str]
) -> None:
    response = await client.post("/token", content=urlencode(fields).encode(), headers=FORM)

    assert_token_or_oauth_error(response)


@PROPERTY
@given(content=st.one_of(st.binary(max_size=300), form_fields.map(lambda f: urlencode(f).encode())))
async def test_any_bytes_get_a_token_or_an_oauth_error(
    client: AsyncTestClient[Any], content: bytes
) -> None:
    response = await client.post("/token", content=content, headers=FORM)

    assert_token_or_oauth_error(response)


@PROPERTY
@given(credentials=st.binary(max_size=80), fields=form_fields)
async def test_any_basic_credentials_get_a_token_or_an_oauth_error(
    client: AsyncTestClient[Any], credentials: bytes, fields: dict[str, str]
) -> None:
    headers = {**FORM, "Authorization": "Basic " + base64.b64encode(credentials).decode()}

    response = await client.post("/token", content=urlencode(fields).encode(), headers=headers)

    assert_token_or_oauth_error(response)
