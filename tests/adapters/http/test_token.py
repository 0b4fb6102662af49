"""``POST /token`` (RFC 6749 §4.4, §2.3.1, §5) and the access tokens it signs (RFC 9068)."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from litestar.testing import AsyncTestClient

from src.bootstrap import create_app
from tests.adapters.http.conftest import (
    CALC_ONLY_ID,
    CALC_ONLY_SECRET,
    DEV_ID,
    DEV_SECRET,
    FORM,
    JWT_SECRET,
    NOW,
    ODD_ID,
    ODD_SECRET,
    PUBLIC_URL,
    SSE_ONLY_ID,
    SSE_ONLY_SECRET,
    TIMEOUT,
    FixedClock,
    GetToken,
    basic,
    bearer,
    make_container,
    make_settings,
)

pytestmark = pytest.mark.anyio

# The seed README's request body, byte for byte (note `scope=calculator+sse`).
SEED_BODY = (
    b"grant_type=client_credentials&client_id=example_client_id"
    b"&client_secret=example_client_secret&scope=calculator+sse"
)
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
BASIC_CHALLENGE = 'Basic realm="calcmcp"'


def assert_oauth_error(response: Any, status: int, error: str, description: str) -> None:
    """An RFC 6749 §5.2 error: exact status, body and headers."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": error, "error_description": description}
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    if status == 401:
        assert response.headers["www-authenticate"] == BASIC_CHALLENGE
    else:
        assert "www-authenticate" not in response.headers


def assert_granted(response: Any, scope: str) -> str:
    """A successful token response for ``scope``; returns the token."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert {k: response.headers[k] for k in NO_STORE} == NO_STORE
    body = response.json()
    assert body == {
        "access_token": body["access_token"],
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": scope,
    }
    token: str = body["access_token"]
    return token


def claims(token: str) -> dict[str, Any]:
    """The verified claims of ``token``, checked with the test secret."""
    decoded: dict[str, Any] = jwt.decode(
        token, JWT_SECRET, algorithms=["HS256"], audience=PUBLIC_URL, issuer=PUBLIC_URL
    )
    return decoded


def form(**fields: str) -> dict[str, str]:
    """A client-credentials form for the development client, with ``fields`` added or replaced."""
    return {
        "grant_type": "client_credentials",
        "client_id": DEV_ID,
        "client_secret": DEV_SECRET,
        **fields,
    }


# --- success -------------------------------------------------------------------------------


async def test_seed_readme_form_issues_a_token(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/token", content=SEED_BODY, headers=FORM)

    token = assert_granted(response, "calculator sse")
    assert claims(token)["scope"] == "calculator sse"


async def test_token_is_an_rfc9068_jwt_with_every_claim(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/token", content=SEED_BODY, headers=FORM)
    token = assert_granted(response, "calculator sse")

    header = jwt.get_unverified_header(token)
    assert header == {"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]}
    assert re.fullmatch(r"[0-9a-f]{16}", header["kid"])
    now = int(NOW)
    assert claims(token) == {
        "iss": PUBLIC_URL,
        "sub": DEV_ID,
        "aud": PUBLIC_URL,
        "exp": now + 3600,
        "iat": now,
        "nbf": now,
        "jti": "jti-1",
        "client_id": DEV_ID,
        "scope": "calculator sse",
    }


async def test_each_token_gets_a_fresh_jti(client: AsyncTestClient[Any]) -> None:
    first = await client.post("/token", data=form())
    second = await client.post("/token", data=form())

    assert claims(first.json()["access_token"])["jti"] == "jti-1"
    assert claims(second.json()["access_token"])["jti"] == "jti-2"


async def test_no_scope_requested_grants_all_the_clients_scopes(
    client: AsyncTestClient[Any],
) -> None:
    response = await client.post("/token", data=form())

    assert_granted(response, "calculator sse")


async def test_a_narrower_scope_is_granted_as_requested(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/token", data=form(scope="sse"))

    token = assert_granted(response, "sse")
    assert claims(token)["scope"] == "sse"


async def test_http_basic_authenticates_the_client(client: AsyncTestClient[Any]) -> None:
    data = {"grant_type": "client_credentials", "scope": "calculator"}
    headers = {"Authorization": basic(DEV_ID, DEV_SECRET)}

    response = await client.post("/token", data=data, headers=headers)

    assert claims(assert_granted(response, "calculator"))["client_id"] == DEV_ID


async def test_http_basic_credentials_are_form_urlencoded_first(
    client: AsyncTestClient[Any],
) -> None:
    headers = {"Authorization": basic(ODD_ID, ODD_SECRET)}

    response = await client.post(
        "/token", data={"grant_type": "client_credentials"}, headers=headers
    )

    token = assert_granted(response, "calculator sse")
    assert claims(token)["client_id"] == ODD_ID
    assert claims(token)["sub"] == ODD_ID


async def test_odd_credentials_work_in_the_form_too(client: AsyncTestClient[Any]) -> None:
    data = form(client_id=ODD_ID, client_secret=ODD_SECRET)

    response = await client.post("/token", data=data)

    assert claims(assert_granted(response, "calculator sse"))["client_id"] == ODD_ID


async def test_basic_credentials_not_urlencoded_are_refused(client: AsyncTestClient[Any]) -> None:
    # "a b:c:p@ss:w/rd%" splits at the first colon: client "a b", secret "c:p@ss:w/rd%"
    raw = base64.b64encode(f"{ODD_ID}:{ODD_SECRET}".encode()).decode()
    headers = {"Authorization": f"Basic {raw}"}

    response = await client.post(
        "/token", data={"grant_type": "client_credentials"}, headers=headers
    )

    assert_oauth_error(response, 401, "invalid_client", "client authentication failed")


async def test_basic_with_the_same_client_id_in_the_form_is_accepted(
    client: AsyncTestClient[Any],
) -> None:
    data = {"grant_type": "client_credentials", "client_id": DEV_ID}
    headers = {"Authorization": basic(DEV_ID, DEV_SECRET)}

    response = await client.post("/token", data=data, headers=headers)

    assert_granted(response, "calculator sse")


@pytest.mark.parametrize(
    "extra",
    [
        {"resource": PUBLIC_URL},  # what the official MCP client sends: this server's URL
        {"audience": "x", "state": "42", "x-custom": "y"},
    ],
    ids=["resource", "unknown"],
)
async def test_unknown_extra_form_fields_are_ignored(
    client: AsyncTestClient[Any], extra: dict[str, str]
) -> None:
    response = await client.post("/token", data=form(**extra))

    assert_granted(response, "calculator sse")


async def test_a_charset_parameter_on_the_media_type_is_accepted(
    client: AsyncTestClient[Any],
) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}

    response = await client.post("/token", content=SEED_BODY, headers=headers)

    assert_granted(response, "calculator sse")


# --- invalid_request -----------------------------------------------------------------------


async def test_missing_grant_type_is_invalid_request(client: AsyncTestClient[Any]) -> None:
    data = {"client_id": DEV_ID, "client_secret": DEV_SECRET}

    response = await client.post("/token", data=data)

    assert_oauth_error(response, 400, "invalid_request", "grant_type is required")


async def test_an_empty_grant_type_counts_as_missing(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/token", data=form(grant_type=""))

    assert_oauth_error(response, 400, "invalid_request", "grant_type is required")


@pytest.mark.parametrize("name", ["grant_type", "client_id", "client_secret", "scope"])
async def test_a_repeated_parameter_is_invalid_request(
    client: AsyncTestClient[Any], name: str
) -> None:
    body = SEED_BODY + f"&{name}=again".encode()

    response = await client.post("/token", content=body, headers=FORM)

    assert_oauth_error(response, 400, "invalid_request", f"parameter '{name}' is repeated")


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/plain", "multipart/form-data; boundary=x", None]
)
async def test_a_body_that_is_not_a_form_is_invalid_request(
    client: AsyncTestClient[Any], content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = json.dumps(form()).encode() if content_type == "application/json" else SEED_BODY

    response = await client.post("/token", content=body, headers=headers)

    assert_oauth_error(
        response,
        400,
        "invalid_request",
        "the request body must be application/x-www-form-urlencoded",
    )


async def test_a_non_utf8_body_is_invalid_request(client: AsyncTestClient[Any]) -> None:
    body = b"grant_type=client_credentials&client_id=\xff\xfe&client_secret=x"

    response = await client.post("/token", content=body, headers=FORM)

    assert_oauth_error(
        response, 400, "invalid_request", "the request body is not a valid UTF-8 form"
    )


async def test_a_percent_encoded_non_utf8_value_is_invalid_request(
    client: AsyncTestClient[Any],
) -> None:
    body = b"grant_type=client_credentials&client_id=%FF&client_secret=x"

    response = await client.post("/token", content=body, headers=FORM)

    assert_oauth_error(
        response, 400, "invalid_request", "the request body is not a valid UTF-8 form"
    )


async def test_too_many_form_fields_are_invalid_request(client: AsyncTestClient[Any]) -> None:
    body = SEED_BODY + b"".join(b"&x%d=1" % i for i in range(40))

    response = await client.post("/token", content=body, headers=FORM)

    assert_oauth_error(
        response, 400, "invalid_request", "the request body is not a valid UTF-8 form"
    )


async def test_basic_and_a_form_secret_at_once_is_invalid_request(
    client: AsyncTestClient[Any],
) -> None:
    headers = {"Authorization": basic(DEV_ID, DEV_SECRET)}

    response = await client.post("/token", data=form(), headers=headers)

    assert_oauth_error(
        response,
        400,
        "invalid_request",
        "use one client authentication method, not Basic and the form",
    )


async def test_basic_and_a_different_form_client_id_is_invalid_request(
    client: AsyncTestClient[Any],
) -> None:
    data = {"grant_type": "client_credentials", "client_id": ODD_ID}
    headers = {"Authorization": basic(DEV_ID, DEV_SECRET)}

    response = await client.post("/token", data=data, headers=headers)

    assert_oauth_error(
        response,
        400,
        "invalid_request",
        "client_id in the form does not match the Basic credentials",
    )


@pytest.mark.parametrize(
    ("authorization", "description"),
    [
        ("Basic !!!not-base64!!!", "the Basic credentials are not valid base64 UTF-8"),
        (
            "Basic " + base64.b64encode(b"\xff\xfe:\xfd").decode(),
            "the Basic credentials are not valid base64 UTF-8",
        ),
        (
            "Basic " + base64.b64encode(b"no-colon").decode(),
            "the Basic credentials must be 'client_id:client_secret'",
        ),
        ("Basic", "the Basic credentials must be 'client_id:client_secret'"),
        ("Bearer abc.def.ghi", "client authentication must use the Basic scheme or the form"),
        ("Digest username=x", "client authentication must use the Basic scheme or the form"),
    ],
    ids=["not-base64", "not-utf8", "no-colon", "empty", "bearer", "digest"],
)
async def test_malformed_client_authentication_is_invalid_request(
    client: AsyncTestClient[Any], authorization: str, description: str
) -> None:
    headers = {"Authorization": authorization}

    response = await client.post(
        "/token", data={"grant_type": "client_credentials"}, headers=headers
    )

    assert_oauth_error(response, 400, "invalid_request", description)


# --- invalid_client ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_id", "secret"),
    [(DEV_ID, "wrong"), ("nobody", DEV_SECRET), (DEV_ID, DEV_SECRET.upper()), (ODD_ID, DEV_SECRET)],
    ids=["wrong-secret", "unknown-client", "secret-case", "secret-of-another-client"],
)
async def test_bad_credentials_in_the_form_are_invalid_client(
    client: AsyncTestClient[Any], client_id: str, secret: str
) -> None:
    response = await client.post("/token", data=form(client_id=client_id, client_secret=secret))

    assert_oauth_error(response, 401, "invalid_client", "client authentication failed")


@pytest.mark.parametrize(
    ("client_id", "secret"), [(DEV_ID, "wrong"), ("nobody", DEV_SECRET)], ids=["secret", "client"]
)
async def test_bad_basic_credentials_are_invalid_client(
    client: AsyncTestClient[Any], client_id: str, secret: str
) -> None:
    headers = {"Authorization": basic(client_id, secret)}

    response = await client.post(
        "/token", data={"grant_type": "client_credentials"}, headers=headers
    )

    assert_oauth_error(response, 401, "invalid_client", "client authentication failed")


@pytest.mark.parametrize(
    "data",
    [
        {"grant_type": "client_credentials"},
        {"grant_type": "client_credentials", "client_id": DEV_ID},
        {"grant_type": "client_credentials", "client_secret": DEV_SECRET},
    ],
    ids=["nothing", "id-only", "secret-only"],
)
async def test_missing_credentials_are_invalid_client(
    client: AsyncTestClient[Any], data: dict[str, str]
) -> None:
    response = await client.post("/token", data=data)

    assert_oauth_error(
        response,
        401,
        "invalid_client",
        "client authentication is required (HTTP Basic or the form)",
    )


async def test_the_dev_client_is_refused_in_production(tmp_path: Path) -> None:
    container = make_container(make_settings(tmp_path, env="production"), FixedClock())
    app = create_app(container)
    async with AsyncTestClient(app=app, raise_server_exceptions=False, timeout=TIMEOUT) as test:
        refused = await test.post("/token", content=SEED_BODY, headers=FORM)
        registered = await test.post(
            "/token", data=form(client_id=ODD_ID, client_secret=ODD_SECRET)
        )

    assert_oauth_error(refused, 401, "invalid_client", "client authentication failed")
    assert_granted(registered, "calculator sse")


# --- unsupported_grant_type, invalid_scope -------------------------------------------------


@pytest.mark.parametrize(
    "grant_type", ["password", "authorization_code", "refresh_token", "CLIENT_CREDENTIALS"]
)
async def test_other_grant_types_are_unsupported(
    client: AsyncTestClient[Any], grant_type: str
) -> None:
    response = await client.post("/token", data=form(grant_type=grant_type))

    assert_oauth_error(
        response,
        400,
        "unsupported_grant_type",
        "only the client_credentials grant type is supported",
    )


@pytest.mark.parametrize(
    ("scope", "description"),
    [
        ("admin", "unknown scope: admin"),
        ("calculator admin root", "unknown scope: admin root"),
        ("Calculator", "unknown scope: Calculator"),
    ],
)
async def test_an_unknown_scope_is_invalid_scope(
    client: AsyncTestClient[Any], scope: str, description: str
) -> None:
    response = await client.post("/token", data=form(scope=scope))

    assert_oauth_error(response, 400, "invalid_scope", description)


@pytest.mark.parametrize(
    ("client_id", "secret", "scope", "beyond"),
    [
        (SSE_ONLY_ID, SSE_ONLY_SECRET, "calculator", "calculator"),
        (SSE_ONLY_ID, SSE_ONLY_SECRET, "sse calculator", "calculator"),
        (CALC_ONLY_ID, CALC_ONLY_SECRET, "sse", "sse"),
    ],
)
async def test_a_scope_beyond_the_clients_is_invalid_scope(
    client: AsyncTestClient[Any], client_id: str, secret: str, scope: str, beyond: str
) -> None:
    data = form(client_id=client_id, client_secret=secret, scope=scope)

    response = await client.post("/token", data=data)

    assert_oauth_error(response, 400, "invalid_scope", f"this client may not request: {beyond}")


# --- invalid_target (RFC 8707), rate limits -----------------------------------------------


@pytest.mark.parametrize("resource", ["https://elsewhere.example/mcp", "not a uri", "urn:x"])
async def test_a_resource_not_served_here_is_invalid_target(
    client: AsyncTestClient[Any], resource: str
) -> None:
    response = await client.post("/token", data=form(resource=resource))

    assert_oauth_error(
        response, 400, "invalid_target", "the requested resource is not served by this server"
    )


async def rate_limited_client(tmp_path: Path) -> AsyncTestClient[Any]:
    """An app whose token endpoint allows a burst of 5 and refills (almost) never."""
    settings = make_settings(tmp_path, token_burst=5.0, token_rate=0.01)
    app = create_app(make_container(settings, FixedClock()))
    return AsyncTestClient(app=app, raise_server_exceptions=False, timeout=TIMEOUT)


async def test_too_many_token_requests_get_429_slow_down(tmp_path: Path) -> None:
    async with await rate_limited_client(tmp_path) as test:
        granted = [(await test.post("/token", data=form())).status_code for _ in range(5)]
        refused = await test.post("/token", data=form())

    assert granted == [200] * 5
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "100"  # one request's worth at 0.01 a second
    assert {k: refused.headers[k] for k in NO_STORE} == NO_STORE
    assert refused.json() == {
        "error": "slow_down",
        "error_description": "too many requests; retry after 100 s",
    }


async def test_a_failed_authentication_costs_five_requests(tmp_path: Path) -> None:
    async with await rate_limited_client(tmp_path) as test:
        failed = await test.post("/token", data=form(client_secret="wrong"))
        refused = await test.post("/token", data=form())

    assert failed.status_code == 401
    assert refused.status_code == 429


async def test_a_failed_authentication_costs_five_even_when_the_bucket_is_low(
    tmp_path: Path,
) -> None:
    async with await rate_limited_client(tmp_path) as test:
        for _ in range(3):  # 5 -> 2 left
            assert (await test.post("/token", data=form())).status_code == 200
        failed = await test.post("/token", data=form(client_secret="wrong"))  # should empty it
        after = await test.post("/token", data=form())

    assert failed.status_code == 401
    assert after.status_code == 429


# --- methods -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_only_post_is_allowed(client: AsyncTestClient[Any], method: str) -> None:
    response = await client.request(method, "/token")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST, OPTIONS"
    assert response.json()["title"] == "Method Not Allowed"


async def test_options_answers_the_allowed_methods(client: AsyncTestClient[Any]) -> None:
    response = await client.options("/token")

    assert response.status_code == 204
    assert response.headers["allow"] == "POST, OPTIONS"


# --- size ----------------------------------------------------------------------------------


async def test_a_one_megabyte_body_is_refused_with_413(client: AsyncTestClient[Any]) -> None:
    body = SEED_BODY + b"&padding=" + b"x" * 1_000_000

    started = time.monotonic()
    response = await client.post("/token", content=body, headers=FORM)

    assert time.monotonic() - started < 1.0
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Request Entity Too Large",
        "status": 413,
        "detail": "the request body is larger than 65536 bytes",
    }


# --- the tokens on a protected route (RFC 6750 §3.1 invalid_token) -------------------------


OTHER_SECRET = "another-secret-0123456789-abcdefghijklmnop"
Forge = Callable[[str], str]
"""Builds a token from the server's key id."""


@pytest.fixture
async def kid(get_token: GetToken) -> str:
    """The id of the key the server signs with (a hand-made token must name it)."""
    header = jwt.get_unverified_header(await get_token())
    assert re.fullmatch(r"[0-9a-f]{16}", header["kid"])
    return str(header["kid"])


def sign(payload: dict[str, Any], kid: str | None, *, key: str = JWT_SECRET, **header: Any) -> str:
    """A token signed by hand; ``header`` overrides the JOSE header."""
    headers = {"typ": "at+jwt", **({"kid": kid} if kid else {}), **header}
    algorithm = headers.pop("alg", "HS256")
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def good_claims(**changes: Any) -> dict[str, Any]:
    """Claims the server would accept, with ``changes`` (a value of None removes the claim)."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": PUBLIC_URL,
        "sub": DEV_ID,
        "aud": PUBLIC_URL,
        "exp": now + 600,
        "iat": now,
        "nbf": now,
        "jti": "hand-made",
        "client_id": DEV_ID,
        "scope": "calculator sse",
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def unsigned(payload: dict[str, Any], kid: str) -> str:
    """An ``alg: none`` token naming the server's key."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'at+jwt', 'kid': kid})}.{part(payload)}."


def assert_invalid_token(response: Any, description: str) -> None:
    """A 401 ``invalid_token`` challenge with a problem body."""
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer realm="calcmcp", error="invalid_token", error_description="{description}"'
    )
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == {
        "type": "about:blank",
        "title": "Unauthorized",
        "status": 401,
        "detail": description,
    }


async def test_a_hand_signed_token_with_good_claims_is_accepted(
    client: AsyncTestClient[Any], kid: str
) -> None:
    # the control for the refusals below: only the one changed property makes them fail
    token = sign(good_claims(), kid)

    response = await client.post("/calculator/add?a=1&b=1", headers=bearer(token))

    assert response.status_code == 200


INVALID = "the access token is invalid"
FOREIGN_KEY = "the access token is not signed by a key of this server"
MALFORMED = "the access token is malformed"
FORGED: list[tuple[str, Forge, str]] = [
    ("other-secret", lambda kid: sign(good_claims(), kid, key=OTHER_SECRET), INVALID),
    ("other-secret-no-kid", lambda kid: sign(good_claims(), None, key=OTHER_SECRET), FOREIGN_KEY),
    ("unknown-kid", lambda kid: sign(good_claims(), "0123456789abcdef"), FOREIGN_KEY),
    ("alg-none", lambda kid: unsigned(good_claims(), kid), FOREIGN_KEY),
    ("alg-hs512", lambda kid: sign(good_claims(), kid, alg="HS512"), FOREIGN_KEY),
    ("other-issuer", lambda kid: sign(good_claims(iss="http://evil.test"), kid), INVALID),
    ("no-jti", lambda kid: sign(good_claims(jti=None), kid), INVALID),
    ("no-exp", lambda kid: sign(good_claims(exp=None), kid), INVALID),
    ("sub-not-client", lambda kid: sign(good_claims(sub="someone-else"), kid), INVALID),
    (
        "typ-jwt",
        lambda kid: sign(good_claims(), kid, typ="JWT"),
        "the token is not an access token (typ must be at+jwt)",
    ),
    (
        "not-yet-valid",
        lambda kid: sign(good_claims(nbf=int(time.time()) + 600), kid),
        "the access token is not valid yet",
    ),
    ("garbage", lambda kid: "not-a-jwt", MALFORMED),
    ("three-garbage-parts", lambda kid: "a.b.c", MALFORMED),
]


@pytest.mark.parametrize(
    ("forge", "description"),
    [pytest.param(forge, description, id=name) for name, forge, description in FORGED],
)
async def test_bad_tokens_are_invalid_token(
    client: AsyncTestClient[Any], kid: str, forge: Forge, description: str
) -> None:
    response = await client.post("/calculator/add?a=1&b=1", headers=bearer(forge(kid)))

    assert_invalid_token(response, description)


@pytest.mark.parametrize("audience", ["http://other.test", ["http://other.test", "urn:x"]])
async def test_a_token_for_another_audience_is_invalid_token(
    client: AsyncTestClient[Any], kid: str, audience: str | list[str]
) -> None:
    token = sign(good_claims(aud=audience), kid)

    response = await client.post("/calculator/add?a=1&b=1", headers=bearer(token))

    assert_invalid_token(response, "the access token is not meant for this resource")


async def test_an_expired_token_is_invalid_token(
    client: AsyncTestClient[Any], clock: FixedClock, get_token: GetToken
) -> None:
    clock.value = NOW - 7200  # issued two hours ago, for one hour
    token = await get_token()

    response = await client.post("/calculator/add?a=1&b=1", headers=bearer(token))

    assert_invalid_token(response, "the access token has expired")


async def test_a_hand_signed_expired_token_is_invalid_token(
    client: AsyncTestClient[Any], kid: str
) -> None:
    past = int(time.time()) - 3600
    token = sign(good_claims(iat=past, nbf=past, exp=past + 60), kid)

    response = await client.post("/calculator/add?a=1&b=1", headers=bearer(token))

    assert_invalid_token(response, "the access token has expired")
