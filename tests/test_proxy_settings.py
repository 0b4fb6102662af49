"""``CALCMCP_TRUSTED_PROXIES``: parsed strictly, and the only thing that turns on uvicorn's
``X-Forwarded-For``/``-Proto`` handling in ``calcmcp serve`` (uvicorn's own default would trust
127.0.0.1). tests/e2e/test_nginx.py shows the effect through a real nginx.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from src.bootstrap import load_settings, main


def proxies(configured: str) -> tuple[str, ...]:
    return load_settings({"CALCMCP_TRUSTED_PROXIES": configured}, env_file=None).proxies


def test_no_proxy_is_trusted_by_default() -> None:
    assert load_settings({}, env_file=None).proxies == ()


def test_trusted_proxies_are_addresses_and_networks() -> None:
    assert proxies(" 127.0.0.1, ::1 ,10.0.0.0/8,, fd00::/8") == (
        "127.0.0.1",
        "::1",
        "10.0.0.0/8",
        "fd00::/8",
    )


def test_a_network_with_host_bits_is_normalised_for_uvicorn() -> None:
    # uvicorn would take 10.1.2.3/8 for a host name that never matches
    assert proxies("10.1.2.3/8") == ("10.0.0.0/8",)


@pytest.mark.parametrize("configured", ["*", "proxy.internal", "10.0.0.0/33", "127.0.0.1 ::1"])
def test_a_malformed_trusted_proxy_is_refused_at_start_up(configured: str) -> None:
    with pytest.raises(SystemExit, match=r"TRUSTED_PROXIES: .* is not an address or network"):
        proxies(configured)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """What ``calcmcp serve`` hands ``uvicorn.run`` (which is not run)."""
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name in [name for name in os.environ if name.startswith("CALCMCP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CALCMCP_DATA_DIR", str(tmp_path / "data"))
    calls: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.update(options, app=app))
    return calls


def test_serve_leaves_forwarded_headers_alone_without_trusted_proxies(
    served: dict[str, Any],
) -> None:
    assert main(["serve"]) == 0
    assert served["proxy_headers"] is False
    assert served["root_path"] == ""


def test_serve_believes_forwarded_headers_from_the_trusted_proxies_only(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALCMCP_TRUSTED_PROXIES", "10.0.0.5, 192.168.0.0/16")
    assert main(["serve"]) == 0
    assert served["proxy_headers"] is True
    assert served["forwarded_allow_ips"] == ["10.0.0.5", "192.168.0.0/16"]


def test_serve_serves_under_the_path_of_the_public_url(
    served: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALCMCP_PUBLIC_URL", "https://example.com/calc/")
    assert main(["serve"]) == 0
    assert served["root_path"] == "/calc"
