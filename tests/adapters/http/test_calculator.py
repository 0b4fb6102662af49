"""``POST /calculator/{operation}``: exact JSON numbers on the wire, problems, bearer challenges."""

from __future__ import annotations

import time
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from src.bootstrap import Container
from src.domain.events import CalculationPerformed
from tests.adapters.http.conftest import DEV_ID, NOW, GetToken, basic, bearer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def token(get_token: GetToken) -> str:
    """A token with both scopes, for the development client."""
    return await get_token()


def assert_problem(response: Any, status: int, slug: str | None, title: str, detail: str) -> None:
    """An RFC 9457 problem: exact status, media type and body."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    kind = f"urn:calcmcp:problem:{slug}" if slug else "about:blank"
    assert response.json() == {"type": kind, "title": title, "status": status, "detail": detail}


# --- results, byte for byte ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/calculator/add?a=5&b=3", b'{"operation":"add","a":5,"b":3,"result":8}'),
        ("/calculator/subtract?a=10&b=4", b'{"operation":"subtract","a":10,"b":4,"result":6}'),
        ("/calculator/multiply?a=6&b=7", b'{"operation":"multiply","a":6,"b":7,"result":42}'),
        ("/calculator/divide?a=20&b=5", b'{"operation":"divide","a":20,"b":5,"result":4}'),
    ],
    ids=["add", "subtract", "multiply", "divide"],
)
async def test_seed_readme_operations(
    client: AsyncTestClient[Any], token: str, path: str, body: bytes
) -> None:
    response = await client.post(path, headers=bearer(token))

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-length"] == str(len(body))
    assert response.content == body


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("/calculator/add?a=0.1&b=0.2", b'"result":0.3}'),
        ("/calculator/subtract?a=0.3&b=0.1", b'"result":0.2}'),
        ("/calculator/multiply?a=1.1&b=1.1", b'"result":1.21}'),
        ("/calculator/divide?a=1&b=3", b'"result":0.3333333333333333333333333333333333}'),
        ("/calculator/divide?a=2&b=3", b'"result":0.6666666666666666666666666666666667}'),
        ("/calculator/subtract?a=-0&b=0", b'"a":0,"b":0,"result":0}'),
        ("/calculator/subtract?a=1.5&b=1.50", b'"result":0}'),
        ("/calculator/add?a=-1.5&b=%2B2", b'"a":-1.5,"b":2,"result":0.5}'),
        (
            "/calculator/add?a=12345678901234567890.123456789&b=0.000000001",
            b'"result":12345678901234567890.123456790}',
        ),
    ],
    ids=[
        "0.1+0.2",
        "0.3-0.1",
        "1.1*1.1",
        "1/3",
        "2/3-half-even",
        "negative-zero",
        "zero",
        "signs",
        "exact-sum",
    ],
)
async def test_results_are_exact_json_numbers(
    client: AsyncTestClient[Any], token: str, path: str, fragment: bytes
) -> None:
    response = await client.post(path, headers=bearer(token))

    assert response.status_code == 200
    assert fragment in response.content
    assert b'"0.' not in response.content  # never a JSON string


async def test_operands_from_a_json_body_may_be_numbers_or_strings(
    client: AsyncTestClient[Any], token: str
) -> None:
    response = await client.post(
        "/calculator/add", content=b'{"a": 0.1, "b": "0.2"}', headers=bearer(token)
    )

    assert response.status_code == 200
    assert response.content == b'{"operation":"add","a":0.1,"b":0.2,"result":0.3}'


async def test_a_json_number_operand_keeps_its_exact_digits(
    client: AsyncTestClient[Any], token: str
) -> None:
    body = b'{"a": 0.1000000000000000055511151231257827, "b": 0}'

    response = await client.post("/calculator/add", content=body, headers=bearer(token))

    assert response.status_code == 200
    assert b'"result":0.1000000000000000055511151231257827}' in response.content


async def test_a_calculation_is_published_for_its_client_only(
    client: AsyncTestClient[Any], token: str, container: Container
) -> None:
    bus = container.event_bus()
    subscription = await bus.subscribe(after=None, wants=lambda event: True)

    await client.post("/calculator/multiply?a=6&b=7", headers=bearer(token))

    (record,) = await subscription.next_batch(1.0)
    event = record.event
    assert isinstance(event, CalculationPerformed)
    assert (event.client_id, event.occurred_at, str(event.calculation.result)) == (
        DEV_ID,
        NOW,
        "42",
    )
    assert not event.audience.admits("someone-else")
    subscription.close()


# --- refused operands ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "slug", "title", "detail"),
    [
        ("a=1", "invalid-operand", "Invalid operand", "b is required"),
        ("b=1", "invalid-operand", "Invalid operand", "a is required"),
        (
            "a=nan&b=1",
            "invalid-operand",
            "Invalid operand",
            "a must be a finite number, not NaN or infinity",
        ),
        (
            "a=1&b=NaN",
            "invalid-operand",
            "Invalid operand",
            "b must be a finite number, not NaN or infinity",
        ),
        (
            "a=inf&b=1",
            "invalid-operand",
            "Invalid operand",
            "a must be a finite number, not NaN or infinity",
        ),
        (
            "a=-Infinity&b=1",
            "invalid-operand",
            "Invalid operand",
            "a must be a finite number, not NaN or infinity",
        ),
        (
            "a=abc&b=1",
            "invalid-operand",
            "Invalid operand",
            "a is not a decimal number (e.g. 42, -1.5, 6.02e23)",
        ),
        (
            "a=1_000&b=1",
            "invalid-operand",
            "Invalid operand",
            "a is not a decimal number (e.g. 42, -1.5, 6.02e23)",
        ),
        (
            "a=%201&b=1",
            "invalid-operand",
            "Invalid operand",
            "a is not a decimal number (e.g. 42, -1.5, 6.02e23)",
        ),
        (
            "a=&b=1",
            "invalid-operand",
            "Invalid operand",
            "a is not a decimal number (e.g. 42, -1.5, 6.02e23)",
        ),
        (
            "a=1e999999999&b=1",
            "operand-out-of-range",
            "Operand out of range",
            "a must be zero or between 1e-1000 and 1e+1000 in magnitude",
        ),
        (
            "a=1&b=1e-999999999999999999999",
            "operand-out-of-range",
            "Operand out of range",
            "b must be zero or between 1e-1000 and 1e+1000 in magnitude",
        ),
        (
            "a=1" + "0" * 400 + "&b=1",
            "operand-out-of-range",
            "Operand out of range",
            "a is longer than 200 characters",
        ),
        (
            "a=" + "1" * 51 + "&b=1",
            "operand-out-of-range",
            "Operand out of range",
            "a has 51 significant digits; at most 50 are accepted",
        ),
    ],
    ids=[
        "missing-b",
        "missing-a",
        "nan",
        "NaN",
        "inf",
        "-Infinity",
        "word",
        "underscore",
        "space",
        "empty",
        "1e999999999",
        "tiny-exponent",
        "401-chars",
        "51-digits",
    ],
)
async def test_bad_operands_are_refused_with_a_problem(
    client: AsyncTestClient[Any], token: str, *, query: str, slug: str, title: str, detail: str
) -> None:
    response = await client.post(f"/calculator/add?{query}", headers=bearer(token))

    assert_problem(response, 400, slug, title, detail)


@pytest.mark.parametrize(
    "operand", ["%D9%A1", "%EF%BC%91%EF%BC%92"], ids=["arabic-indic", "fullwidth"]
)
async def test_non_ascii_digits_are_invalid_operands(
    client: AsyncTestClient[Any], token: str, operand: str
) -> None:
    response = await client.post(f"/calculator/add?a={operand}&b=1", headers=bearer(token))

    assert_problem(
        response,
        400,
        "invalid-operand",
        "Invalid operand",
        "a is not a decimal number (e.g. 42, -1.5, 6.02e23)",
    )


async def test_divide_by_zero_is_refused(client: AsyncTestClient[Any], token: str) -> None:
    response = await client.post("/calculator/divide?a=1&b=0.000", headers=bearer(token))

    assert_problem(
        response, 400, "division-by-zero", "Division by zero", "division by zero is undefined"
    )


async def test_a_60_kb_query_operand_is_refused_quickly(
    client: AsyncTestClient[Any], token: str
) -> None:
    # httpx refuses URLs over 64 kB; tests/e2e sends a 100 kB one to the real server
    started = time.monotonic()
    response = await client.post(
        f"/calculator/multiply?a={'9' * 60_000}&b=9", headers=bearer(token)
    )

    assert time.monotonic() - started < 1.0
    assert_problem(
        response,
        400,
        "operand-out-of-range",
        "Operand out of range",
        "a is longer than 200 characters",
    )


async def test_a_100_kb_body_operand_is_refused_quickly(
    client: AsyncTestClient[Any], token: str
) -> None:
    body = b'{"a": ' + b"9" * 100_000 + b', "b": 9}'

    started = time.monotonic()
    response = await client.post("/calculator/multiply", content=body, headers=bearer(token))

    assert time.monotonic() - started < 1.0
    assert_problem(
        response,
        413,
        None,
        "Request Entity Too Large",
        "the request body is larger than 4096 bytes",
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1}',
        b'{"a": 1, "b": 2, "c": 3}',
        b"[1, 2]",
        b"a=1&b=2",
        b'{"a": 1, "b": ',
    ],
    ids=["missing-b", "extra-field", "array", "form", "truncated"],
)
async def test_a_body_that_is_not_two_operands_is_refused(
    client: AsyncTestClient[Any], token: str, body: bytes
) -> None:
    response = await client.post("/calculator/add", content=body, headers=bearer(token))

    assert_problem(
        response,
        400,
        None,
        "Bad Request",
        'the body must be a JSON object {"a": <number>, "b": <number>}',
    )


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"a": "nan", "b": 1}', "a must be a finite number, not NaN or infinity"),
        (b'{"a": true, "b": 1}', "a is not a decimal number (e.g. 42, -1.5, 6.02e23)"),
        (b'{"a": null, "b": 1}', "a is not a decimal number (e.g. 42, -1.5, 6.02e23)"),
        (b'{"a": 1, "b": [2]}', "b is not a decimal number (e.g. 42, -1.5, 6.02e23)"),
        (b'{"a": 1, "b": {"x": 2}}', "b is not a decimal number (e.g. 42, -1.5, 6.02e23)"),
    ],
    ids=["nan-string", "true", "null", "array", "object"],
)
async def test_json_operands_that_are_not_numbers_are_invalid(
    client: AsyncTestClient[Any], token: str, body: bytes, detail: str
) -> None:
    response = await client.post("/calculator/add", content=body, headers=bearer(token))

    assert_problem(response, 400, "invalid-operand", "Invalid operand", detail)


async def test_a_json_operand_beyond_the_exponent_bound_is_out_of_range(
    client: AsyncTestClient[Any], token: str
) -> None:
    response = await client.post(
        "/calculator/add", content=b'{"a": 1e999999999, "b": 1}', headers=bearer(token)
    )

    assert_problem(
        response,
        400,
        "operand-out-of-range",
        "Operand out of range",
        "a must be zero or between 1e-1000 and 1e+1000 in magnitude",
    )


@pytest.mark.parametrize(
    "path", ["/calculator/power", "/calculator/ADD", "/calculator", "/calc/add"]
)
async def test_an_unknown_operation_is_a_404_problem(
    client: AsyncTestClient[Any], token: str, path: str
) -> None:
    response = await client.post(f"{path}?a=1&b=2", headers=bearer(token))

    assert_problem(response, 404, None, "Not Found", "Not Found")


async def test_get_is_not_allowed(client: AsyncTestClient[Any], token: str) -> None:
    response = await client.get("/calculator/add?a=1&b=2", headers=bearer(token))

    assert_problem(response, 405, None, "Method Not Allowed", "Method Not Allowed")
    assert response.headers["allow"] == "POST, OPTIONS"


@pytest.mark.parametrize("method", ["HEAD", "PUT", "DELETE", "PATCH"])
async def test_other_methods_are_not_allowed_before_any_token_is_checked(
    client: AsyncTestClient[Any], method: str
) -> None:
    response = await client.request(method, "/calculator/add?a=1&b=2")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST, OPTIONS"
    assert "www-authenticate" not in response.headers


async def test_options_answers_the_allowed_methods_without_a_token(
    client: AsyncTestClient[Any],
) -> None:
    # a CORS preflight carries no credentials: it is answered, not challenged
    response = await client.options("/calculator/divide")

    assert response.status_code == 204
    assert response.headers["allow"] == "POST, OPTIONS"
    assert "content-length" not in response.headers
    assert response.content == b""


# --- bearer authentication (RFC 6750) ------------------------------------------------------


async def test_no_token_is_a_401_challenge_without_an_error(client: AsyncTestClient[Any]) -> None:
    response = await client.post("/calculator/add?a=5&b=3")

    assert response.headers["www-authenticate"] == 'Bearer realm="calcmcp"'
    assert_problem(response, 401, None, "Unauthorized", "an access token is required")


async def test_http_basic_instead_of_a_bearer_token_is_a_401(
    client: AsyncTestClient[Any],
) -> None:
    headers = {"Authorization": basic("example_client_id", "example_client_secret")}

    response = await client.post("/calculator/add?a=5&b=3", headers=headers)

    assert response.headers["www-authenticate"] == 'Bearer realm="calcmcp"'
    assert_problem(response, 401, None, "Unauthorized", "an access token is required")


async def test_the_bearer_scheme_is_case_insensitive(
    client: AsyncTestClient[Any], token: str
) -> None:
    response = await client.post(
        "/calculator/add?a=5&b=3", headers={"Authorization": f"bEaReR {token}"}
    )

    assert response.status_code == 200


async def test_a_token_without_the_calculator_scope_is_forbidden(
    client: AsyncTestClient[Any], get_token: GetToken
) -> None:
    token = await get_token(scope="sse")

    response = await client.post("/calculator/add?a=5&b=3", headers=bearer(token))

    assert response.headers["www-authenticate"] == (
        'Bearer realm="calcmcp", error="insufficient_scope", '
        "error_description=\"this operation needs the 'calculator' scope\", "
        'scope="calculator"'
    )
    assert_problem(response, 403, None, "Forbidden", "this operation needs the 'calculator' scope")


@pytest.mark.parametrize("with_header", [False, True], ids=["query-only", "query-and-header"])
async def test_a_token_in_the_query_string_is_invalid_request(
    client: AsyncTestClient[Any], token: str, with_header: bool
) -> None:
    headers = bearer(token) if with_header else {}

    response = await client.post(f"/calculator/add?a=5&b=3&access_token={token}", headers=headers)

    assert response.headers["www-authenticate"] == (
        'Bearer realm="calcmcp", error="invalid_request", '
        'error_description="access tokens are accepted in the Authorization header only"'
    )
    assert_problem(
        response,
        400,
        None,
        "Bad Request",
        "access tokens are accepted in the Authorization header only",
    )
    assert token not in response.text


@pytest.mark.parametrize("authorization", ["Bearer", "Bearer   ", "Bearer a b"])
async def test_a_malformed_bearer_header_is_invalid_request(
    client: AsyncTestClient[Any], authorization: str
) -> None:
    response = await client.post(
        "/calculator/add?a=5&b=3", headers={"Authorization": authorization}
    )

    assert response.headers["www-authenticate"] == (
        'Bearer realm="calcmcp", error="invalid_request", '
        "error_description=\"the Authorization header must be 'Bearer <token>'\""
    )
    assert_problem(
        response, 400, None, "Bad Request", "the Authorization header must be 'Bearer <token>'"
    )
