"""The API documentation: Swagger UI, ReDoc, the OpenAPI document, and JSON errors around them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Operation, PathItem
from litestar.testing import AsyncTestClient

from src.adapters.http.openapi import add_operations, written_response

pytestmark = pytest.mark.anyio

CALCULATOR_PATHS = [f"/calculator/{op}" for op in ("add", "subtract", "multiply", "divide")]
NOT_FOUND = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "Not Found"}


@pytest.fixture
async def document(client: AsyncTestClient[Any]) -> dict[str, Any]:
    """The OpenAPI document as served."""
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    ("path", "target", "marker"),
    [("/docs", "/schema/swagger", "swagger-ui"), ("/redoc", "/schema/redoc", "redoc")],
)
async def test_docs_redirect_to_their_renderer(
    client: AsyncTestClient[Any], path: str, target: str, marker: str
) -> None:
    redirect = await client.get(path, follow_redirects=False)
    page = await client.get(target)

    assert redirect.status_code == 302
    assert redirect.headers["location"] == target
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.text.lstrip().lower().startswith("<!doctype html>")
    assert marker in page.text.lower()
    assert "<title>calcmcp</title>" in page.text


async def test_swagger_ui_offers_both_scopes_when_authorizing(client: AsyncTestClient[Any]) -> None:
    page = await client.get("/schema/swagger")

    assert 'ui.initOAuth({"clientId":"","scopes":"calculator sse"})' in page.text


async def test_the_docs_need_no_token(client: AsyncTestClient[Any]) -> None:
    for path in ("/docs", "/redoc", "/schema/openapi.json", "/"):
        response = await client.get(path)
        assert response.status_code == 200, path


async def test_the_index_says_where_the_docs_are(client: AsyncTestClient[Any]) -> None:
    response = await client.get("/")

    assert response.json() == {
        "service": "calcmcp",
        "docs": "/docs",
        "redoc": "/redoc",
        "openapi": "/schema/openapi.json",
    }


async def test_the_security_scheme_is_oauth2_client_credentials(
    document: dict[str, Any],
) -> None:
    schemes = document["components"]["securitySchemes"]

    assert list(schemes) == ["oauth2"]
    assert schemes["oauth2"]["type"] == "oauth2"
    flows = schemes["oauth2"]["flows"]
    assert list(flows) == ["clientCredentials"]
    assert flows["clientCredentials"]["tokenUrl"] == "/token"
    assert sorted(flows["clientCredentials"]["scopes"]) == ["calculator", "sse"]


@pytest.mark.parametrize("path", CALCULATOR_PATHS)
async def test_calculator_operations_need_the_calculator_scope(
    document: dict[str, Any], path: str
) -> None:
    operation = document["paths"][path]["post"]

    assert operation["security"] == [{"oauth2": ["calculator"]}]
    assert {"200", "400", "401", "403"} <= set(operation["responses"])
    problem = operation["responses"]["400"]["content"]
    assert list(problem) == ["application/problem+json"]


@pytest.mark.parametrize(("path", "method"), [("/events", "get"), ("/broadcast", "post")])
async def test_event_routes_need_the_sse_scope(
    document: dict[str, Any], path: str, method: str
) -> None:
    assert document["paths"][path][method]["security"] == [{"oauth2": ["sse"]}]


async def test_the_token_endpoint_is_documented_without_security(
    document: dict[str, Any],
) -> None:
    operation = document["paths"]["/token"]["post"]

    assert "security" not in operation
    assert set(operation["responses"]) == {"200", "400", "401", "413", "429"}
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TokenResponse"
    }
    assert document["components"]["schemas"]["TokenResponse"]["required"] == [
        "access_token",
        "expires_in",
        "scope",
        "token_type",
    ]


@pytest.mark.parametrize("path", CALCULATOR_PATHS)
async def test_calculator_operations_document_both_ways_to_send_operands(
    document: dict[str, Any], path: str
) -> None:
    operation = document["paths"][path]["post"]

    assert [(p["name"], p["in"], p["required"]) for p in operation["parameters"]] == [
        ("a", "query", False),
        ("b", "query", False),
    ]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["a", "b"]
    assert body["additionalProperties"] is False
    assert operation["responses"]["413"]["description"] == "The body is larger than 4096 bytes"


async def test_every_schema_the_document_refers_to_is_in_it(document: dict[str, Any]) -> None:
    referred = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))

    assert referred
    assert referred <= set(document["components"]["schemas"])


def test_an_operation_naming_a_missing_schema_is_refused() -> None:
    # no logging config: Litestar's default would replace the root logger's handlers
    app = Litestar(
        route_handlers=[], openapi_config=OpenAPIConfig(title="t", version="1"), logging_config=None
    )
    orphan = PathItem(post=Operation(responses={"200": written_response("ok", "Nowhere")}))

    with pytest.raises(RuntimeError, match="the OpenAPI document has no schema Nowhere"):
        add_operations(app, {"/orphan": orphan}, {})


async def test_undocumented_routes_stay_out_of_the_document(document: dict[str, Any]) -> None:
    assert not {"/", "/docs", "/redoc"} & set(document["paths"])
    # nor the documentation's own pages
    assert not [path for path in document["paths"] if path.startswith("/schema")]


@pytest.mark.parametrize(
    "path", ["/nope", "/docs/extra", "/redoc/extra", "/schema/openapi.yaml", "/a/b/c"]
)
async def test_unknown_paths_answer_a_json_problem(client: AsyncTestClient[Any], path: str) -> None:
    response = await client.get(path, headers={"Accept": "text/html"})

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == NOT_FOUND


@pytest.mark.parametrize("path", ["/schema/nope", "/schema/elements"])
async def test_unknown_paths_under_schema_answer_a_json_problem(
    client: AsyncTestClient[Any], path: str
) -> None:
    response = await client.get(path)

    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json() == NOT_FOUND
