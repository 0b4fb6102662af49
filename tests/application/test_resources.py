"""Resource indicators (RFC 8707): their canonical form, and which ones a token may name."""

from __future__ import annotations

import pytest

from src.application.errors import InvalidTarget
from src.application.security import Resources, canonical_resource

MCP = "https://calc.example/mcp"
DOCS = "https://calc.example/docs"


@pytest.mark.parametrize(
    ("uri", "canonical"),
    [
        (MCP, MCP),
        ("HTTPS://Calc.Example/mcp/", MCP),
        ("https://CALC.EXAMPLE/mcp", MCP),
        ("https://calc.example/mcp///", MCP),
        ("https://calc.example", "https://calc.example"),
        ("https://calc.example/", "https://calc.example"),
        ("http://localhost:8000/mcp", "http://localhost:8000/mcp"),
        ("https://calc.example/MCP", "https://calc.example/MCP"),
        ("https://calc.example/mcp?tenant=A", "https://calc.example/mcp?tenant=A"),
        ("https://calc.example/mcp/?x=1", "https://calc.example/mcp?x=1"),
        ("https://[2001:DB8::1]:8443/mcp", "https://[2001:db8::1]:8443/mcp"),
    ],
)
def test_a_resource_has_one_canonical_form(uri: str, canonical: str) -> None:
    assert canonical_resource(uri) == canonical


@pytest.mark.parametrize(
    "uri",
    [
        pytest.param("https://calc.example/mcp#tools", id="fragment"),
        pytest.param("/mcp", id="relative-path"),
        pytest.param("calc.example/mcp", id="no-scheme"),
        pytest.param("//calc.example/mcp", id="network-path"),
        pytest.param("ftp://calc.example/mcp", id="ftp"),
        pytest.param("urn:calc:mcp", id="urn"),
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("https:///mcp", id="no-host"),
        pytest.param("", id="empty"),
    ],
)
def test_a_uri_that_is_not_an_absolute_http_uri_is_not_a_resource(uri: str) -> None:
    assert canonical_resource(uri) is None


def test_resources_are_kept_in_canonical_form_and_the_first_is_the_default() -> None:
    resources = Resources.of("HTTPS://Calc.Example/mcp/", DOCS)
    assert resources.default == MCP
    assert resources.served == frozenset({MCP, DOCS})


@pytest.mark.parametrize(
    "uris",
    [("https://calc.example/mcp#x",), ("/mcp",), ("ftp://calc.example/",), (MCP, "urn:x")],
)
def test_resources_refuse_a_uri_that_is_not_a_resource(uris: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match="absolute"):
        Resources.of(*uris)


def test_no_requested_resource_means_the_default_audience() -> None:
    assert Resources.of(MCP, DOCS).audience(()) == (MCP,)


def test_requested_resources_become_the_audience_canonical_in_order_without_repeats() -> None:
    audience = Resources.of(MCP, DOCS).audience((DOCS, "HTTPS://CALC.example/mcp/", MCP))
    assert audience == (DOCS, MCP)


@pytest.mark.parametrize(
    "requested",
    [
        ("https://elsewhere.example/mcp",),
        ("https://calc.example/mcp/tools",),
        ("https://calc.example/mcp#tools",),
        ("http://calc.example/mcp",),
        ("/mcp",),
        ("",),
        (MCP, "https://elsewhere.example/mcp"),
    ],
)
def test_a_requested_resource_not_served_is_an_invalid_target(
    requested: tuple[str, ...],
) -> None:
    with pytest.raises(InvalidTarget):
        Resources.of(MCP, DOCS).audience(requested)
