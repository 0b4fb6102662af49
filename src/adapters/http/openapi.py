"""The OpenAPI document: an OAuth 2.0 client-credentials scheme, so Swagger UI's Authorize works."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Response, Router
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, OAuthFlow, OAuthFlows, SecurityScheme, Tag

from src.adapters.http.errors import OAuthError, Problem, problem
from src.adapters.http.wire import TokenResponse

SCHEME = "oauth2"
Number = Annotated[float, msgspec.Meta(description="A JSON number, written from the exact decimal")]


class Calculation(msgspec.Struct):
    """A calculator result, as documented (the wire carries exact decimals as JSON numbers)."""

    operation: Literal["add", "subtract", "multiply", "divide"]
    a: Number
    b: Number
    result: Number


CALCULATOR_SECURITY: list[dict[str, list[str]]] = [{SCHEME: ["calculator"]}]
SSE_SECURITY: list[dict[str, list[str]]] = [{SCHEME: ["sse"]}]

DESCRIPTION = """\
A calculator for AI agents and machine clients, over REST and as a live event stream, behind
OAuth 2.0 client credentials.

Press **Authorize**, enter a client id and secret (the development default is
`example_client_id` / `example_client_secret`, off in production) and tick the scopes you need.
"""


def response_spec(data_container: Any, description: str, **kwargs: Any) -> ResponseSpec:
    """A documented response, without generated examples."""
    return ResponseSpec(
        data_container=data_container,
        description=description,
        generate_examples=False,
        **kwargs,
    )


def problem_spec(description: str) -> ResponseSpec:
    """A documented problem-details response."""
    return response_spec(Problem, description, media_type="application/problem+json")


def bearer_responses() -> dict[int, ResponseSpec]:
    """The refusals every bearer-protected route may answer with."""
    return {
        401: problem_spec("Missing or invalid access token (`WWW-Authenticate: Bearer`)"),
        403: problem_spec("The token lacks the scope this route needs"),
    }


def calculator_responses() -> dict[int, ResponseSpec]:
    """The calculator's documented responses."""
    return {
        200: response_spec(Calculation, "The exact result"),
        400: problem_spec("An operand is invalid or out of range, or division by zero"),
        **bearer_responses(),
    }


def token_responses() -> dict[int, ResponseSpec]:
    """The token endpoint's documented responses."""
    return {
        200: response_spec(TokenResponse, "An access token (no-store)"),
        400: response_spec(OAuthError, "RFC 6749 §5.2 error"),
        401: response_spec(OAuthError, "Client authentication failed"),
    }


def introspection_responses(body: Any) -> dict[int, ResponseSpec]:
    """The introspection endpoint's documented responses."""
    return {
        **token_responses(),
        200: response_spec(body, "Whether the token is active, and its claims"),
    }


async def _json_not_found(response: Response[Any]) -> Response[Any]:
    # Litestar answers unknown paths under /schema with an HTML page; every other unknown
    # path gets a problem document, so these do too.
    if response.status_code == 404:
        return problem(404, "Not Found", "Not Found")
    return response


def openapi_config(*, title: str, version: str, scopes: dict[str, str]) -> OpenAPIConfig:
    """The document, its renderers (Swagger UI, ReDoc, JSON) and the OAuth scheme."""
    flows = OAuthFlows(client_credentials=OAuthFlow(token_url="/token", scopes=scopes))
    swagger_oauth: dict[str, Any] = {"clientId": "", "scopes": " ".join(scopes)}
    return OpenAPIConfig(
        openapi_router=Router("/schema", route_handlers=[], after_request=_json_not_found),
        title=title,
        version=version,
        description=DESCRIPTION,
        path="/schema",
        render_plugins=[
            SwaggerRenderPlugin(path="/swagger", init_oauth=swagger_oauth),
            RedocRenderPlugin(path="/redoc"),
            JsonRenderPlugin(path="/openapi.json"),
        ],
        components=Components(
            security_schemes={SCHEME: SecurityScheme(type="oauth2", flows=flows)}
        ),
        tags=[
            Tag(name="OAuth 2.0", description="Client-credentials tokens"),
            Tag(name="Calculator", description="Exact decimal arithmetic"),
            Tag(name="Events", description="Live server-sent events"),
        ],
    )
