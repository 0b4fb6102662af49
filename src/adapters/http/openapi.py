"""The OpenAPI document: an OAuth 2.0 client-credentials scheme, so Swagger UI's Authorize works."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request, Response, Router
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    OAuthFlow,
    OAuthFlows,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    PathItem,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
    Tag,
)

from src.adapters.http.errors import OAuthError, Problem, problem

SCHEME = "oauth2"
Number = Annotated[float, msgspec.Meta(description="A JSON number, written from the exact decimal")]


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


def reference(schema: str) -> Reference:
    """A reference to one of the document's component schemas."""
    return Reference(ref=f"#/components/schemas/{schema}")


def written_response(
    description: str, schema: str, media_type: str = "application/json"
) -> OpenAPIResponse:
    """A response documented by hand (for a route Litestar does not document), by schema name."""
    return OpenAPIResponse(
        description=description,
        content={media_type: OpenAPIMediaType(schema=reference(schema))},
    )


def written_problem(description: str) -> OpenAPIResponse:
    """A problem-details response documented by hand."""
    return written_response(description, "Problem", "application/problem+json")


def add_operations(app: Litestar, paths: dict[str, PathItem], schemas: dict[str, Schema]) -> None:
    """Add operations Litestar does not write (ASGI routes') to ``app``'s OpenAPI document.

    Litestar builds the document once, when it is first asked for, and serves that very object:
    these are added to it then (see :func:`openapi_config`), with the component ``schemas`` they
    name; adding them again changes nothing. A schema they refer to that the document does not
    have is refused.
    """
    document = app.openapi_schema
    if document.paths is not None and paths.keys() <= document.paths.keys():
        return  # added already
    document.paths = {**(document.paths or {}), **paths}
    found = {**schemas, **(document.components.schemas or {})}
    document.components.schemas = dict(sorted(found.items()))
    written = json.dumps({path: item.to_schema() for path, item in paths.items()})
    missing = set(re.findall(r'"#/components/schemas/([^"]+)"', written)) - set(found)
    if missing:
        raise RuntimeError(f"the OpenAPI document has no schema {', '.join(sorted(missing))}")


def bearer_responses() -> dict[int, ResponseSpec]:
    """The refusals every bearer-protected route may answer with."""
    return {
        401: problem_spec("Missing or invalid access token (`WWW-Authenticate: Bearer`)"),
        403: problem_spec("The token lacks the scope this route needs"),
    }


def oauth_responses(ok: Any, description: str) -> dict[int, ResponseSpec]:
    """An OAuth endpoint's documented responses: ``ok`` on success, RFC 6749 errors otherwise."""
    return {
        200: response_spec(ok, description),
        400: response_spec(OAuthError, "RFC 6749 §5.2 error"),
        401: response_spec(OAuthError, "Client authentication failed"),
        413: problem_spec("The body is too large"),
        429: response_spec(OAuthError, "Too many attempts (`slow_down`); see `Retry-After`"),
    }


CLIENT_FIELDS = {
    "client_id": "The client's id (or use HTTP Basic)",
    "client_secret": "The client's secret (or use HTTP Basic)",
}


def form_body(fields: dict[str, str], required: tuple[str, ...]) -> RequestBody:
    """A documented ``application/x-www-form-urlencoded`` body of string ``fields``."""
    schema = Schema(
        type=OpenAPIType.OBJECT,
        properties={
            name: Schema(type=OpenAPIType.STRING, description=text) for name, text in fields.items()
        },
        required=list(required),
    )
    return RequestBody(
        content={"application/x-www-form-urlencoded": OpenAPIMediaType(schema=schema)},
        required=True,
    )


def form_operation(fields: dict[str, str], required: tuple[str, ...]) -> type[Operation]:
    """An operation class documenting a form body the handler reads itself.

    The OAuth endpoints parse their ``application/x-www-form-urlencoded`` body by hand (to
    refuse repeated parameters and bad encodings the RFC way), so Litestar cannot infer it.
    """
    body = form_body(fields, required)

    @dataclass
    class FormOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = body

    return FormOperation


async def _json_not_found(response: Response[Any]) -> Response[Any]:
    # Litestar answers unknown paths under /schema with an HTML page; every other unknown
    # path gets a problem document, so these do too.
    if response.status_code == 404:
        return problem(404, "Not Found", "Not Found")
    return response


def openapi_config(
    *,
    title: str,
    version: str,
    scopes: dict[str, str],
    written: dict[str, PathItem],
    schemas: dict[str, Schema],
) -> OpenAPIConfig:
    """The document, its renderers (Swagger UI, ReDoc, JSON) and the OAuth scheme, with the
    ``written`` operations (and the ``schemas`` they name) added when it is first asked for:
    building it costs an application a quarter of its start-up, so Litestar defers that too."""
    flows = OAuthFlows(client_credentials=OAuthFlow(token_url="/token", scopes=scopes))
    swagger_oauth: dict[str, Any] = {"clientId": "", "scopes": " ".join(scopes)}

    async def with_written(request: Request[Any, Any, Any]) -> None:
        add_operations(request.app, written, schemas)

    return OpenAPIConfig(
        openapi_router=Router(
            "/schema",
            route_handlers=[],
            before_request=with_written,
            after_request=_json_not_found,
            include_in_schema=False,
        ),
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
