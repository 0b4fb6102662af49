"""Shared test configuration: hypothesis profiles, the anyio backend, the log-secret check."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

# the log-secret check (see tests/log_secrets.py): pytest finds its hooks by name here
from tests.log_secrets import (
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_runtest_logreport,
    pytest_unconfigure,
)

__all__ = [
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_runtest_logreport",
    "pytest_unconfigure",
]

settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, as the server does."""
    return "asyncio"
