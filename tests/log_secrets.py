"""The log-secret check's plugin: the run's log lines in one file, and the secrets the run used.

For the whole run, every log record of the service (and of the libraries it runs on) is written
as one JSON line, with every extra field, to a file; the client-side loggers of the tests
themselves (httpx, the MCP SDK's client, ...) are left out, as they are not the service's logs.
Meanwhile every secret the run creates is registered where it is made: configured secrets
(settings), client secrets put into any client store or made by ``ManageClients``, and stream
tickets. ``tests/test_log_secrets.py`` is moved to the end of the run and greps that file, and
the output of every server process the run started, for all of them and for anything shaped
like a JWT or a private key.

Hooks are re-exported by ``tests/conftest.py``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import src.bootstrap
from src.adapters.logs import JsonLineFormatter
from src.adapters.memory.clients import MemoryClientStore
from src.adapters.postgres.clients import PostgresClientStore
from src.adapters.sqlite.clients import SqliteClientStore
from src.application.issue_stream_ticket import IssueStreamTicket
from src.application.manage_clients import ManageClients

MARKER = "runs_last"
LOG_FILE = pytest.StashKey[Path]()
CLIENT_SIDE = ("httpx", "httpcore", "hpack", "h11", "h2", "mcp.client", "urllib3", "schemathesis")
"""Loggers of the tests' own clients: what they log is not the service's log."""
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
PRIVATE_KEY = re.compile(r"PRIVATE KEY-----")
WORD = re.compile(r"[A-Za-z0-9_-]+")
SHORTEST = 8
"""Registered values shorter than this are too common to grep for (none of ours are)."""
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class Secrets:
    """The secrets the run has used so far."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, *values: object) -> None:
        """Register each value that is a string long enough to be told apart."""
        for value in values:
            if isinstance(value, str) and len(value) >= SHORTEST:
                self._values.add(value)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._values))

    def __len__(self) -> int:
        return len(self._values)

    def leaks(self, lines: Iterable[str]) -> list[str]:
        """The lines that carry a registered secret, a JWT or a private key (and which).

        A secret counts as a whole value, not as a piece of a longer id or word. Most secrets
        are one run of URL-safe characters: a line's runs are looked up in a set (a run writes
        many lines and registers many secrets); the few others are searched for one by one.
        """
        words = {value for value in self._values if WORD.fullmatch(value)}
        others = [(value, _whole(value)) for value in self._values - words]
        found = []
        for line in lines:
            named = [_label(word) for word in WORD.findall(line) if word in words]
            named += [_label(value) for value, whole in others if whole.search(line)]
            named += ["a JWT"] * bool(JWT.search(line))
            named += ["a private key"] * bool(PRIVATE_KEY.search(line))
            if named:
                found.append(f"{', '.join(named)} in: {line[:400]}")
        return found


def _whole(value: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9_-]){re.escape(value)}(?![A-Za-z0-9_-])")


def _label(secret: str) -> str:
    return f"secret {secret[:3]}...({len(secret)} chars)"


SECRETS = Secrets()
RAN: set[str] = set()
"""Node ids of the tests that have run (their call phase)."""


class EveryFieldFormatter(JsonLineFormatter):
    """The project's JSON line, plus any extra attribute a library put on the record."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as JSON, with its other extras (as text) and stack."""
        text = super().format(record)
        extras = {
            key: repr(value)
            for key, value in vars(record).items()
            if key not in _STANDARD and key != "fields"
        }
        if record.stack_info:
            extras["stack"] = record.stack_info
        if not extras:
            return text
        return json.dumps({**json.loads(text), **extras}, ensure_ascii=False)


class ServiceRecords(logging.Filter):
    """Leaves out the records of the tests' own clients."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether ``record`` is the service's (or a library it runs on)."""
        name = record.name
        return not any(name == side or name.startswith(side + ".") for side in CLIENT_SIDE)


def log_file(config: pytest.Config) -> Path:
    """Where this run's log lines are."""
    return config.stash[LOG_FILE]


def pytest_configure(config: pytest.Config) -> None:
    """Start writing every record to the run's log file, and watching for secrets."""
    config.addinivalue_line("markers", f"{MARKER}: run after every other test of the session")
    descriptor, name = tempfile.mkstemp(prefix="calcmcp-test-log-", suffix=".jsonl")
    os.close(descriptor)
    handler = logging.FileHandler(name, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(EveryFieldFormatter())
    handler.addFilter(ServiceRecords())
    logging.getLogger().addHandler(handler)
    # The service's own loggers at DEBUG whatever the root's level (every app a test builds
    # sets the root to its configured level): nothing it logs escapes the check.
    service = logging.getLogger("calcmcp")
    level = service.level
    service.setLevel(logging.DEBUG)
    patches = pytest.MonkeyPatch()
    _watch_secrets(patches)
    config.stash[LOG_FILE] = Path(name)
    config.stash[_CLEANUP] = lambda: _stop(handler, patches, Path(name), level)


_CLEANUP = pytest.StashKey[Callable[[], None]]()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop writing and watching; remove the file."""
    cleanup = config.stash.get(_CLEANUP, None)
    if cleanup is not None:
        cleanup()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the tests marked ``runs_last`` to the end of the run."""
    last = [item for item in items if item.get_closest_marker(MARKER)]
    if last:
        items[:] = [item for item in items if item not in last] + last


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Note which tests have run."""
    if report.when == "call":
        RAN.add(report.nodeid)


def _stop(handler: logging.Handler, patches: pytest.MonkeyPatch, path: Path, level: int) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()
    logging.getLogger("calcmcp").setLevel(level)
    patches.undo()
    path.unlink(missing_ok=True)


def _watch_secrets(patches: pytest.MonkeyPatch) -> None:
    """Register secrets where they are made, for as long as the run lasts."""
    SECRETS.add(src.bootstrap.DEV_CLIENT.secret)
    patches.setattr(src.bootstrap, "configure_logging", _settings_secrets(src.bootstrap))
    key = src.bootstrap.client_secret_key
    patches.setattr(src.bootstrap, "client_secret_key", _after(key, lambda k: SECRETS.add(k.hex())))
    patches.setattr(MemoryClientStore, "register", _seeding(MemoryClientStore.register))
    for store in (MemoryClientStore, SqliteClientStore, PostgresClientStore):
        patches.setattr(store, "add", _second_argument(store.add))
        patches.setattr(store, "set_secret", _second_argument(store.set_secret))
    for method in ("create", "rotate_secret"):
        made = getattr(ManageClients, method)
        patches.setattr(ManageClients, method, _returning(made, "client_secret"))
    patches.setattr(IssueStreamTicket, "execute", _returning(IssueStreamTicket.execute, "ticket"))


def _settings_secrets(bootstrap: Any) -> Callable[[Any], None]:
    configure = bootstrap.configure_logging

    @functools.wraps(configure)
    def configure_logging(settings: Any) -> None:
        SECRETS.add(settings.jwt_secret, settings.client_secret_key)
        SECRETS.add(*_client_secrets(settings.clients))
        for url in (settings.redis_url, settings.database_url):
            SECRETS.add(urlsplit(url).password)
        configure(settings)

    return configure_logging


def _client_secrets(configured: str) -> list[object]:
    # a test may configure nonsense on purpose: what cannot be read holds no secret to register
    try:
        clients = json.loads(configured or "[]")
    except ValueError:
        return []
    if not isinstance(clients, list):
        return []
    return [client.get("client_secret") for client in clients if isinstance(client, dict)]


def _after(function: Callable[..., Any], note: Callable[[Any], None]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        note(result)
        return result

    return wrapper


def _seeding(register: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(register)
    def wrapper(self: Any, seed: Any) -> None:
        SECRETS.add(seed.secret)
        register(self, seed)

    return wrapper


def _second_argument(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method(self, client, secret)``, registering ``secret`` (however it is passed)."""

    @functools.wraps(method)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        SECRETS.add(kwargs.get("secret", args[1] if len(args) > 1 else None))
        return await method(self, *args, **kwargs)

    return wrapper


def _returning(method: Callable[..., Any], attribute: str) -> Callable[..., Any]:
    @functools.wraps(method)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = await method(*args, **kwargs)
        SECRETS.add(getattr(result, attribute))
        return result

    return wrapper
