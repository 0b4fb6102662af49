"""``calcmcp clients`` and ``calcmcp keys`` on the data directory of a running server.

The command line runs as the operator would run it (``python -m src.bootstrap ...``, same
``CALCMCP_DATA_DIR``) while the real server process serves from that directory: clients land in
its SQLite database, keys in its key file, and the server must honour both without a restart.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import jwt
import pytest

from tests.e2e.conftest import DEV_ID, DEV_SECRET, REPO, TIMEOUT, Server, bearer, start_server

pytestmark = pytest.mark.anyio

PUBLIC = "https://calc.example.net"  # both servers of a test serve (and sign for) the same URL
ADD = "/calculator/add?a=2&b=3"
PICKUP_DEADLINE = 8.0  # a server reloads its keys for an unknown kid at most every 5 s
CREDENTIALS = re.compile(r"client_id:\s+(\S+)\nclient_secret:\s+(\S+)\n")


def cli(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``calcmcp *args`` on ``workdir``'s data directory; it must succeed."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CALCMCP_")}
    environ.update(PYTHONPATH=str(REPO), CALCMCP_DATA_DIR=str(workdir / "data"))
    result = subprocess.run(
        [sys.executable, "-m", "src.bootstrap", *args],
        cwd=workdir,
        env=environ,
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@asynccontextmanager
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT) as client:
        yield client


async def request_token(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    """A client-credentials request with HTTP Basic."""
    form = {"grant_type": "client_credentials"}
    return await client.post("/token", data=form, auth=(client_id, secret))


async def token(
    client: httpx.AsyncClient, client_id: str = DEV_ID, secret: str = DEV_SECRET
) -> str:
    response = await request_token(client, client_id, secret)
    assert response.status_code == 200, response.text
    access_token: str = response.json()["access_token"]
    return access_token


def assert_invalid_client(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"] == 'Basic realm="calcmcp"'


def modes(directory: Path) -> dict[str, int]:
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in directory.iterdir()}


def kid(access_token: str) -> str:
    return str(jwt.get_unverified_header(access_token)["kid"])


async def test_a_cli_client_gets_tokens_until_its_secret_rotates_or_it_is_disabled(
    tmp_path: Path,
) -> None:
    workdir = tmp_path / "node"
    with start_server(workdir, public_url=PUBLIC) as server:
        created = cli(workdir, "clients", "create", "--scope", "calculator")
        client_id, secret = CREDENTIALS.fullmatch(created.stdout).groups()  # type: ignore[union-attr]
        async with http(server) as client:
            granted = await request_token(client, client_id, secret)
            assert granted.status_code == 200, granted.text
            assert granted.json()["scope"] == "calculator"
            access_token = granted.json()["access_token"]
            assert (await client.post(ADD, headers=bearer(access_token))).status_code == 200
            refused_scope = await client.post("/broadcast?message=x", headers=bearer(access_token))
            assert refused_scope.status_code == 403

            rotated = cli(workdir, "clients", "rotate-secret", client_id)
            [(same_id, new_secret)] = CREDENTIALS.findall(rotated.stdout)
            assert same_id == client_id
            assert new_secret != secret
            assert_invalid_client(await request_token(client, client_id, secret))
            assert (await request_token(client, client_id, new_secret)).status_code == 200

            cli(workdir, "clients", "disable", client_id)
            assert_invalid_client(await request_token(client, client_id, new_secret))
            cli(workdir, "clients", "enable", client_id)
            assert (await request_token(client, client_id, new_secret)).status_code == 200

        listing = cli(workdir, "clients", "list").stdout
        data_modes = modes(workdir / "data")

    [row] = [line for line in listing.splitlines() if line.startswith(client_id)]
    assert row.split()[1] == "calculator"
    assert row.split()[-1] == "enabled"
    assert "never" not in row  # the server recorded its last use
    # the secrets are printed once, on stdout, and never logged
    for output in (created.stderr, rotated.stderr, listing):
        assert secret not in output
        assert new_secret not in output
    assert {"clients.db", "client-secrets.key", "signing-keys.json"} <= set(data_modes)
    assert data_modes == dict.fromkeys(data_modes, 0o600)


async def wait_until_accepted(client: httpx.AsyncClient, access_token: str) -> httpx.Response:
    """Call the calculator with ``access_token`` until it is accepted or the deadline passes."""
    deadline = time.monotonic() + PICKUP_DEADLINE
    while True:
        response = await client.post(ADD, headers=bearer(access_token))
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        await anyio.sleep(0.25)


async def test_after_a_key_rotation_tokens_of_both_keys_are_accepted(tmp_path: Path) -> None:
    workdir = tmp_path / "node"
    with start_server(workdir, public_url=PUBLIC) as first:
        async with http(first) as before:
            old_token = await token(before)
            assert (await before.post(ADD, headers=bearer(old_token))).status_code == 200

            rotation = cli(workdir, "keys", "rotate")

            assert (await before.post(ADD, headers=bearer(old_token))).status_code == 200
            # a second process on the same data directory (a restart, or another worker)
            with start_server(workdir, public_url=PUBLIC) as second:
                async with http(second) as after:
                    jwks: dict[str, Any] = (await after.get("/.well-known/jwks.json")).json()
                    new_token = await token(after)
                    old_at_second = await after.post(ADD, headers=bearer(old_token))
                    new_at_second = await after.post(ADD, headers=bearer(new_token))
            # the first server picks the new key up when a token names it
            new_at_first = await wait_until_accepted(before, new_token)
            old_at_first = await before.post(ADD, headers=bearer(old_token))
        listing = cli(workdir, "keys", "list").stdout
        key_file_mode = stat.S_IMODE((workdir / "data" / "signing-keys.json").stat().st_mode)

    old_kid, new_kid = kid(old_token), kid(new_token)
    assert old_kid != new_kid
    assert new_kid in rotation.stdout
    assert {key["kid"] for key in jwks["keys"]} == {old_kid, new_kid}
    assert all("d" not in key for key in jwks["keys"])
    assert old_at_second.status_code == 200, old_at_second.text
    assert new_at_second.status_code == 200, new_at_second.text
    assert new_at_first.status_code == 200, new_at_first.text
    assert old_at_first.status_code == 200, old_at_first.text
    rows = {line.split()[0]: line for line in listing.splitlines()[1:]}
    assert set(rows) == {old_kid, new_kid}
    assert rows[new_kid].split()[1] == "ES256"
    assert rows[new_kid].endswith("signing")
    assert "verifying until" in rows[old_kid]
    assert key_file_mode == 0o600
