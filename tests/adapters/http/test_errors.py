"""The HTTP error tables: every refusal of the core is mapped, and each mapping's response."""

from __future__ import annotations

import importlib
import pkgutil
from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

import src.application
import src.domain
from src.adapters.http.errors import (
    BEARER_ERRORS,
    DOMAIN_ERRORS,
    OAUTH_ERRORS,
    OAUTH_OPT,
    OTHER_ERRORS,
    on_application_error,
    on_domain_error,
)
from src.application.errors import (
    ApplicationError,
    InsufficientScope,
    RateLimited,
    ServiceUnavailable,
    StreamEnded,
    TooManyStreams,
)
from src.domain.errors import DomainError


def _import_everything(package: Any) -> None:
    """Import every module of ``package``, so subclasses defined anywhere in it exist."""
    for module in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        importlib.import_module(module.name)


_import_everything(src.domain)
_import_everything(src.application)


def subclasses(base: type[Exception]) -> list[type[Exception]]:
    """Every subclass of ``base``, recursively, in a stable order."""
    found: dict[type[Exception], None] = {}
    pending = list(base.__subclasses__())
    while pending:
        cls = pending.pop(0)
        if cls not in found:
            found[cls] = None
            pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: cls.__qualname__)


DOMAIN = subclasses(DomainError)
APPLICATION = subclasses(ApplicationError)
APPLICATION_TABLES = {**OAUTH_ERRORS, **BEARER_ERRORS, **OTHER_ERRORS}


def sample(cls: type[Exception]) -> Any:
    """An instance of ``cls`` with a client-safe message."""
    if issubclass(cls, InsufficientScope):
        return cls("calculator")
    if issubclass(cls, StreamEnded):
        return cls("shutdown", "the server is shutting down")
    if issubclass(cls, RateLimited):
        return cls(2.6)
    return cls("a client-safe message")


def request_to(*, oauth_route: bool = False) -> Any:
    """A stand-in for the request the handler receives: its route's options and its scope."""
    return SimpleNamespace(
        route_handler=SimpleNamespace(opt={OAUTH_OPT: True} if oauth_route else {}),
        scope={},
    )


def test_the_walk_finds_the_known_refusals() -> None:
    # guards the walk itself: an empty list would make the tests below vacuous
    assert len(DOMAIN) >= 6
    assert len(APPLICATION) >= 9


@pytest.mark.parametrize("cls", DOMAIN, ids=lambda cls: cls.__name__)
def test_every_domain_error_is_mapped(cls: type[DomainError]) -> None:
    assert cls in DOMAIN_ERRORS


@pytest.mark.parametrize("cls", APPLICATION, ids=lambda cls: cls.__name__)
def test_every_application_error_is_mapped_exactly_once(cls: type[ApplicationError]) -> None:
    found = [cls in OAUTH_ERRORS, cls in BEARER_ERRORS, cls in OTHER_ERRORS]
    assert found.count(True) == 1


def test_the_tables_map_only_refusals_of_the_core() -> None:
    assert set(DOMAIN_ERRORS) <= set(DOMAIN)
    assert set(APPLICATION_TABLES) <= set(APPLICATION)


@pytest.mark.parametrize("cls", DOMAIN, ids=lambda cls: cls.__name__)
def test_a_domain_error_becomes_its_problem(cls: type[DomainError]) -> None:
    status, slug, title = DOMAIN_ERRORS[cls]

    response = on_domain_error(None, sample(cls))  # type: ignore[arg-type]

    assert status in (400, 404)
    assert response.status_code == status
    assert response.media_type == "application/problem+json"
    assert msgspec.json.decode(response.content) == {
        "type": f"urn:calcmcp:problem:{slug}",
        "title": title,
        "status": status,
        "detail": "a client-safe message",
    }


@pytest.mark.parametrize("cls", list(OAUTH_ERRORS), ids=lambda cls: cls.__name__)
def test_an_oauth_error_becomes_an_rfc6749_error(cls: type[ApplicationError]) -> None:
    status, code = OAUTH_ERRORS[cls]

    response = on_application_error(request_to(), sample(cls))

    assert response.status_code == status
    assert response.media_type == "application/json"
    assert msgspec.json.decode(response.content) == {
        "error": code,
        "error_description": "a client-safe message",
    }
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Pragma"] == "no-cache"
    challenge = response.headers.get("WWW-Authenticate")
    assert challenge == ('Basic realm="calcmcp"' if status == 401 else None)


@pytest.mark.parametrize("cls", list(BEARER_ERRORS), ids=lambda cls: cls.__name__)
def test_a_bearer_error_becomes_a_challenge(cls: type[ApplicationError]) -> None:
    status, code = BEARER_ERRORS[cls]
    exc = sample(cls)

    response = on_application_error(request_to(), exc)

    assert response.status_code == status
    assert response.media_type == "application/problem+json"
    assert msgspec.json.decode(response.content) == {
        "type": "about:blank",
        "title": "Forbidden" if status == 403 else "Unauthorized",
        "status": status,
        "detail": str(exc),
    }
    expected = 'Bearer realm="calcmcp"'
    if code is not None:
        expected += f', error="{code}", error_description="{exc}"'
    if isinstance(exc, InsufficientScope):
        expected += ', scope="calculator"'
    assert response.headers["WWW-Authenticate"] == expected


@pytest.mark.parametrize(
    "cls",
    [cls for cls in OTHER_ERRORS if not issubclass(cls, RateLimited)],
    ids=lambda cls: cls.__name__,
)
def test_other_application_errors_become_problems(cls: type[ApplicationError]) -> None:
    status, slug = OTHER_ERRORS[cls]
    exc = sample(cls)

    response = on_application_error(request_to(), exc)

    assert response.status_code == status
    assert response.media_type == "application/problem+json"
    assert msgspec.json.decode(response.content) == {
        "type": f"urn:calcmcp:problem:{slug}",
        "title": "Request refused",
        "status": status,
        "detail": str(exc),
    }


def test_rate_limited_is_a_429_problem_with_retry_after() -> None:
    assert OTHER_ERRORS[RateLimited] == (429, "rate-limited")

    response = on_application_error(request_to(), RateLimited(2.6))

    assert response.status_code == 429
    assert response.media_type == "application/problem+json"
    assert response.headers["Retry-After"] == "3"
    assert msgspec.json.decode(response.content) == {
        "type": "urn:calcmcp:problem:rate-limited",
        "title": "Too Many Requests",
        "status": 429,
        "detail": "too many requests; retry after 3 s",
    }


@pytest.mark.parametrize(
    ("per_client", "detail"),
    [
        (True, "this client has as many event streams open as it may; retry after 5 s"),
        (False, "the server has as many event streams open as it may; retry after 5 s"),
    ],
)
def test_too_many_streams_is_a_429_problem_with_retry_after(per_client: bool, detail: str) -> None:
    assert OTHER_ERRORS[TooManyStreams] == (429, "too-many-streams")

    response = on_application_error(request_to(), TooManyStreams(4.2, per_client=per_client))

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "5"
    assert msgspec.json.decode(response.content) == {
        "type": "urn:calcmcp:problem:too-many-streams",
        "title": "Too Many Requests",
        "status": 429,
        "detail": detail,
    }


def test_service_unavailable_is_a_503_problem_with_retry_after() -> None:
    assert OTHER_ERRORS[ServiceUnavailable] == (503, "service-unavailable")

    exc = ServiceUnavailable("the event bus is unavailable; try again shortly", retry_after=1.2)
    response = on_application_error(request_to(), exc)

    assert response.status_code == 503
    assert response.media_type == "application/problem+json"
    assert response.headers["Retry-After"] == "2"
    assert msgspec.json.decode(response.content) == {
        "type": "urn:calcmcp:problem:service-unavailable",
        "title": "Request refused",
        "status": 503,
        "detail": "the event bus is unavailable; try again shortly",
    }


def test_the_retry_after_header_and_the_message_agree() -> None:
    response = on_application_error(request_to(), RateLimited(2.4))

    detail = msgspec.json.decode(response.content)["detail"]
    assert detail == f"too many requests; retry after {response.headers['Retry-After']} s"


def test_rate_limited_on_a_token_route_is_an_oauth_slow_down() -> None:
    response = on_application_error(request_to(oauth_route=True), RateLimited(0.2))

    assert response.status_code == 429
    assert response.media_type == "application/json"
    assert response.headers["Retry-After"] == "1"
    assert response.headers["Cache-Control"] == "no-store"
    assert msgspec.json.decode(response.content) == {
        "error": "slow_down",
        "error_description": "too many requests; retry after 1 s",
    }
