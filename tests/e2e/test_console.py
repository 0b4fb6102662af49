"""The operator's console in a real headless Chromium against the real server.

Chromium is Debian's ``chromium`` package (``./dev test`` installs it when it can), driven by
Playwright with ``executable_path``: no browser is downloaded. The page is reached through a TCP
relay in this test, so the connection can really be cut and restored: the page must notice, get a
fresh ticket once the server is reachable again, and resume with the last id it saw, so that the
events broadcast while it was away are shown, once each, in order.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DEV_ID, DEV_SECRET, Server, bearer, start_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 15_000
LOG_SIZE = 5  # small, so that a long enough absence leaves a gap

if not CHROMIUM.exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


class Relay:
    """A TCP relay on 127.0.0.1 in front of the server whose connections can be cut.

    While cut, every open connection is closed and new ones are closed as soon as accepted.
    """

    def __init__(self, target_port: int) -> None:
        self._target = ("127.0.0.1", target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._up = True
        self._stopped = False
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def cut(self) -> None:
        """Close every connection, and refuse new ones until :meth:`restore`."""
        with self._lock:
            self._up = False
            for sock in self._sockets:
                _close(sock)
            self._sockets.clear()

    def restore(self) -> None:
        """Relay new connections again."""
        with self._lock:
            self._up = True

    def close(self) -> None:
        self._stopped = True
        self.cut()
        self._thread.join(timeout=2)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                if not self._up:
                    _close(client)
                    continue
                try:
                    upstream = socket.create_connection(self._target, timeout=5)
                except OSError:
                    _close(client)
                    continue
                upstream.settimeout(None)
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The console's own server: a short replay log, and revocation checked every 0.2 s."""
    workdir = tmp_path_factory.mktemp("console")
    with start_server(workdir, event_log_size=str(LOG_SIZE), sse_auth_check="0.2") as running:
        yield running


@pytest.fixture
def relay(server: Server) -> Iterator[Relay]:
    """A cuttable relay in front of the server: the page's only way to it."""
    running = Relay(server.port)
    yield running
    running.close()


@pytest.fixture
def page(relay: Relay) -> Iterator[Any]:
    """A page of a fresh headless Chromium."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            browser.close()


def broadcasts_shown(page: Any) -> list[str]:
    """The texts of the broadcast events on the page, in order."""
    texts: list[str] = page.locator("#events li.broadcast .text").all_inner_texts()
    return texts


def test_the_console_gets_a_token_calculates_broadcasts_and_survives_a_cut(
    server: Server, relay: Relay, page: Any
) -> None:
    p = page
    problems: list[str] = []
    p.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    p.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security" in message.text else None
        ),
    )
    run = uuid.uuid4().hex[:8]

    p.goto(f"http://127.0.0.1:{relay.port}/console")
    p.fill("#client-id", DEV_ID)
    p.fill("#client-secret", DEV_SECRET)
    p.click("#get-token")
    p.wait_for_selector("#token-status:text-is('token ready')")
    assert DEV_ID in p.inner_text("#whoami")

    p.fill("#operand-a", "0.1")
    p.select_option("#operation", "add")
    p.fill("#operand-b", "0.2")
    p.click("#calculate")
    p.wait_for_selector("#result:text-is('0.3')")

    p.click("#connect")
    p.wait_for_selector("#stream-state[data-state=open]")
    p.fill("#message", f"first {run}")
    p.click("#broadcast")
    p.wait_for_selector(f"#events li.broadcast:has-text('first {run}')")

    # the connection drops; the page retries (and fails) while the server is out of reach
    relay.cut()
    p.wait_for_selector("#stream-state[data-state=reconnecting]")
    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        form = {
            "grant_type": "client_credentials",
            "client_id": DEV_ID,
            "client_secret": DEV_SECRET,
        }
        token = http.post("/token", data=form).json()["access_token"]
        missed = [f"missed {i} {run}" for i in range(3)]
        for message in missed:
            response = http.post("/broadcast", json={"message": message}, headers=bearer(token))
            assert response.status_code == 200
    p.wait_for_selector("#events li.status:has-text('reconnecting in 2 s')")  # a retry failed
    assert p.inner_text("#stream-state") == "reconnecting"
    relay.restore()

    p.wait_for_selector(f"#events li.broadcast:has-text('{missed[-1]}')")
    p.wait_for_selector("#stream-state[data-state=open]")
    p.fill("#message", f"after {run}")
    p.click("#broadcast")
    p.wait_for_selector(f"#events li.broadcast:has-text('after {run}')")

    shown = [text for text in broadcasts_shown(p) if text.endswith(run)]
    assert shown == [f"first {run}", *missed, f"after {run}"]  # each once, in order
    assert p.inner_text("#reconnects") == "1"
    last_id = p.inner_text("#last-id")
    assert p.locator(f"#events li[data-id='{last_id}']").count() == 1
    assert p.locator("#events li.status", has_text="reconnected, resuming after").count() == 1
    assert problems == []


def token_for(server: Server) -> str:
    """A token of the development client, fetched by the test itself."""
    form = {"grant_type": "client_credentials", "client_id": DEV_ID, "client_secret": DEV_SECRET}
    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        token: str = http.post("/token", data=form).json()["access_token"]
    return token


def test_the_console_shows_a_gap_and_the_end_of_a_revoked_token(
    server: Server, relay: Relay, page: Any
) -> None:
    p = page
    run = uuid.uuid4().hex[:8]
    token = token_for(server)
    p.goto(f"http://127.0.0.1:{relay.port}/console")
    p.fill("#token-input", token)  # a pasted token, this time
    p.click("#use-token")
    p.wait_for_selector("#token-status:text-is('token ready')")
    p.click("#connect")
    p.wait_for_selector("#stream-state[data-state=open]")
    p.fill("#message", f"seen {run}")
    p.click("#broadcast")
    p.wait_for_selector(f"#events li.broadcast:has-text('seen {run}')")

    relay.cut()  # away for longer than the log reaches back
    p.wait_for_selector("#stream-state[data-state=reconnecting]")
    sent = [f"gone {i} {run}" for i in range(LOG_SIZE + 3)]
    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        for message in sent:
            response = http.post("/broadcast", json={"message": message}, headers=bearer(token))
            assert response.status_code == 200
    relay.restore()
    p.wait_for_selector(f"#events li.broadcast:has-text('{sent[-1]}')")

    assert p.locator("#events li.reset").count() == 1
    assert "gap: events after your Last-Event-ID are no longer kept" in p.inner_text(
        "#events li.reset"
    )
    shown = [text for text in broadcasts_shown(p) if text.endswith(run)]
    assert shown == [f"seen {run}", *sent[-LOG_SIZE:]]  # what the log still had, once, in order

    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        revoked = http.post("/revoke", data={"token": token}, auth=(DEV_ID, DEV_SECRET))
        assert revoked.status_code == 200
    p.wait_for_selector("#events li.end:has-text('revoked')")
    p.wait_for_selector("#events li.status:has-text('get a new token')")
    p.wait_for_selector("#stream-state[data-state=closed]")
