"""nginx in front of a calcmcp process, configured with the snippet docs/operations.md ships.

The snippet is read from the docs (between ``<!-- nginx:start -->`` and ``<!-- nginx:end -->``)
and changed only where a test must: the upstream's port, the address nginx listens on, and
what a test adds (a source address for upstream connections, extra locations). So the
configuration the docs recommend is the one these tests run. nginx runs in the foreground as one
process (``master_process off``), with its prefix, pid file, temporary files and logs in a
temporary directory, and is always stopped.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO

NGINX = Path("/usr/sbin/nginx")
OPERATIONS = REPO / "docs" / "operations.md"
START_TIMEOUT = 10.0
_MAIN = """daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{snippet}
}}
"""


@dataclass
class Nginx:
    """A running nginx: the port it listens on (127.0.0.1), its process and its directory."""

    port: int
    process: subprocess.Popen[bytes]
    directory: Path

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"http://127.0.0.1:{self.port}"

    def errors(self) -> str:
        """Its error log so far (for failure messages)."""
        log = self.directory / "error.log"
        return log.read_text(errors="replace")[-4000:] if log.exists() else ""


def documented(name: str) -> str:
    """The nginx configuration docs/operations.md shows between the ``name`` markers."""
    pattern = rf"<!-- {name}:start -->\s*```nginx\n(.*?)```\s*<!-- {name}:end -->"
    found = re.search(pattern, OPERATIONS.read_text(), re.DOTALL)
    assert found, f"no nginx block between the {name} markers in {OPERATIONS}"
    return found.group(1)


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"the documented configuration should have {old!r} once"
    return text.replace(old, new)


ROOT_LOCATION = """    location / {
        proxy_pass http://calcmcp;
    }
"""


def configuration(
    directory: Path,
    *,
    port: int,
    upstream_port: int,
    prefixed: bool = False,
    bind: str | None = None,
    extra: str = "",
) -> str:
    """The documented configuration, listening on ``127.0.0.1:port``, proxying to calcmcp.

    Args:
        prefixed: serve calcmcp under ``/calc/``, with the documented locations for it.
        bind: the source address of nginx's connections to calcmcp (``proxy_bind``).
        extra: more ``location`` blocks for the server.
    """
    config = documented("nginx")
    config = _replace_once(config, "server 127.0.0.1:8001;", f"server 127.0.0.1:{upstream_port};")
    config = _replace_once(config, "listen 80;", f"listen 127.0.0.1:{port};")
    if prefixed:
        config = _replace_once(config, ROOT_LOCATION, documented("nginx-prefix"))
    if bind:
        name = "server_name calc.example.com;"
        config = _replace_once(config, name, f"{name}\n    proxy_bind {bind};")
    if extra:
        closing = config.rstrip().rfind("}")
        config = config[:closing] + extra + "}\n"
    return _MAIN.format(dir=directory, snippet=config)


def require_nginx() -> None:
    """Skip (or, in CI, fail) when Debian's nginx is not installed."""
    if not NGINX.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{NGINX} is missing: install Debian's nginx package", pytrace=False)
        pytest.skip(f"{NGINX} is missing (apt-get install nginx)")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def start_nginx(directory: Path, config: str, port: int) -> Iterator[Nginx]:
    """Run nginx with ``config`` until the block ends."""
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(config)
    error_log = directory / "error.log"
    process = subprocess.Popen(
        [str(NGINX), "-p", str(directory), "-c", str(conf), "-e", str(error_log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    nginx = Nginx(port=port, process=process, directory=directory)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _listening(port):
            if process.poll() is not None:
                pytest.fail(f"nginx exited with {process.returncode}:\n{nginx.errors()}")
            if time.monotonic() > deadline:
                pytest.fail(f"nginx did not listen within {START_TIMEOUT} s:\n{nginx.errors()}")
            time.sleep(0.05)
        yield nginx
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # fast shutdown: open streams are cut
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
