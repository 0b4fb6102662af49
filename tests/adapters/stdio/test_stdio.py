"""MCP over stdio: the session in process, and ``python -m src stdio`` as a desktop client runs it.

Newline-delimited JSON-RPC on stdin and stdout; logs on stderr only; EOF ends the process
cleanly; the HTTP stack is never imported, so a launch is quick.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from src.adapters.stdio import StdioSession, serve
from src.application.security import Principal
from src.bootstrap import Container, build_container, load_settings

REPO = Path(__file__).resolve().parents[3]
MODERN = "2026-07-28"
META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}
ALL_TOOLS = ["add", "subtract", "multiply", "divide", "broadcast"]
PROCESS_TIMEOUT = 10.0


def line(message: Any) -> bytes:
    """One message as a stdin line."""
    return json.dumps(message).encode() + b"\n"


def modern(
    method: str, params: dict[str, Any] | None = None, request_id: Any = 1
) -> dict[str, Any]:
    """A 2026-07-28 request."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": method,
        "params": {**(params or {}), "_meta": dict(META)},
    }


def legacy(
    method: str, params: dict[str, Any] | None = None, request_id: Any = 1
) -> dict[str, Any]:
    """A request of the handshake era."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return body


INITIALIZE = legacy("initialize", {"protocolVersion": "2025-11-25", "capabilities": {}}, 0)


# --- in process --------------------------------------------------------------------------


@pytest.fixture
def container(tmp_path: Path) -> Container:
    """The real container, as ``calcmcp stdio`` builds it."""
    return build_container(load_settings({"CALCMCP_DATA_DIR": str(tmp_path)}, env_file=None))


def principal(*scopes: str) -> Principal:
    """The configured stdio principal."""
    return Principal(
        client_id="desk", scopes=frozenset(scopes), token_id="stdio", expires_at=float("inf")
    )


@pytest.fixture
def session(container: Container) -> StdioSession:
    """A session acting with both scopes."""
    return StdioSession(container.mcp_server(), principal("calculator", "sse"))


async def answer(session: StdioSession, message: Any) -> Any:
    """The decoded answer to one line (``None`` when there is none)."""
    raw = message if isinstance(message, bytes) else line(message)
    reply = await session.handle(raw)
    return None if reply is None else json.loads(reply)


pytestmark = pytest.mark.anyio


async def test_a_modern_request_is_answered_without_a_handshake(session: StdioSession) -> None:
    reply = await answer(session, modern("tools/list", request_id="a"))
    assert reply["id"] == "a"
    assert [tool["name"] for tool in reply["result"]["tools"]] == ALL_TOOLS
    assert reply["result"]["resultType"] == "complete"


async def test_discover_names_the_supported_versions(session: StdioSession) -> None:
    reply = await answer(session, modern("server/discover"))
    assert MODERN in reply["result"]["supportedVersions"]


async def test_initialize_then_requests_without_meta(session: StdioSession) -> None:
    reply = await answer(session, INITIALIZE)
    assert reply["result"]["protocolVersion"] == "2025-11-25"
    assert await answer(session, {"jsonrpc": "2.0", "method": "notifications/initialized"}) is None
    tools = await answer(session, legacy("tools/list", request_id=2))
    assert [tool["name"] for tool in tools["result"]["tools"]] == ALL_TOOLS
    assert "resultType" not in tools["result"]
    assert (await answer(session, legacy("ping", request_id=3)))["result"] == {}


async def test_a_request_before_initialize_without_meta_is_invalid(session: StdioSession) -> None:
    reply = await answer(session, legacy("tools/list", request_id=4))
    assert reply["id"] == 4
    assert reply["error"]["code"] == -32600


async def test_ping_is_answered_before_initialize(session: StdioSession) -> None:
    assert (await answer(session, legacy("ping", request_id=5)))["result"] == {}


async def test_an_unsupported_modern_version_is_refused(session: StdioSession) -> None:
    request = modern("tools/list")
    request["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] = "1900-01-01"
    error = (await answer(session, request))["error"]
    assert error["code"] == -32022
    assert error["data"]["requested"] == "1900-01-01"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"{not json\n", -32700),
        (b"\xff\xfe\n", -32700),
        (b'"a string"\n', -32600),
        (b'{"jsonrpc":"1.0","id":1,"method":"ping"}\n', -32600),
        (b"[]\n", -32600),
    ],
)
async def test_a_bad_line_is_answered_with_an_error_and_id_null(
    session: StdioSession, raw: bytes, code: int
) -> None:
    reply = await answer(session, raw)
    assert reply == {"jsonrpc": "2.0", "id": None, "error": reply["error"]}
    assert reply["error"]["code"] == code


async def test_invalid_utf8_inside_a_string_is_a_parse_error(session: StdioSession) -> None:
    reply = await answer(session, b'{"jsonrpc":"2.0","id":1,"method":"p\xffng"}\n')
    assert reply["error"]["code"] == -32700


async def test_invalid_utf8_inside_the_params_is_a_parse_error(session: StdioSession) -> None:
    raw = json.dumps(modern("tools/call", {"name": "add", "arguments": {"a": 1, "b": "XX"}}))
    reply = await answer(session, raw.encode().replace(b"XX", b"\xff") + b"\n")
    assert reply["id"] is None  # not JSON text: the id cannot be known
    assert reply["error"]["code"] == -32700


async def test_an_out_of_range_json_number_is_an_error_result(session: StdioSession) -> None:
    raw = json.dumps(modern("tools/call", {"name": "add", "arguments": {"a": 1, "b": 0}}))
    reply = await answer(session, raw.replace('"b": 0', '"b": 1e999999').encode() + b"\n")
    assert reply["result"]["isError"] is True


@pytest.mark.parametrize("raw", [b"\n", b"   \r\n", b""])
async def test_a_blank_line_is_ignored(session: StdioSession, raw: bytes) -> None:
    assert await session.handle(raw) is None


async def test_a_crlf_line_is_read(session: StdioSession) -> None:
    reply = await answer(session, json.dumps(modern("tools/list")).encode() + b"\r\n")
    assert "result" in reply


async def test_notifications_get_no_answer(session: StdioSession) -> None:
    note = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}
    assert await answer(session, note) is None


async def test_tool_refusals_are_error_results_and_unknown_tools_invalid_params(
    session: StdioSession,
) -> None:
    zero = await answer(
        session, modern("tools/call", {"name": "divide", "arguments": {"a": 1, "b": 0}})
    )
    assert zero["result"]["isError"] is True
    assert "division by zero" in zero["result"]["content"][0]["text"]
    unknown = await answer(session, modern("tools/call", {"name": "sqrt", "arguments": {}}))
    assert unknown["error"]["code"] == -32602


async def test_an_unknown_resource_is_invalid_params_at_2026_and_not_found_before(
    session: StdioSession,
) -> None:
    modern_reply = await answer(session, modern("resources/read", {"uri": "calc://nope"}))
    assert modern_reply["error"]["code"] == -32602
    await answer(session, INITIALIZE)
    legacy_reply = await answer(session, legacy("resources/read", {"uri": "calc://nope"}))
    assert legacy_reply["error"]["code"] == -32002


async def test_the_configured_scopes_limit_the_tools(container: Container) -> None:
    session = StdioSession(container.mcp_server(), principal("calculator"))
    tools = await answer(session, modern("tools/list"))
    assert [tool["name"] for tool in tools["result"]["tools"]] == ALL_TOOLS[:4]
    refused = await answer(
        session, modern("tools/call", {"name": "broadcast", "arguments": {"message": "x"}}, 9)
    )
    assert refused["id"] == 9
    assert refused["error"]["data"] == {"scope": "sse"}
    assert refused["error"]["code"] == -32001
    read = await answer(session, modern("resources/read", {"uri": "calc://events/recent"}, 10))
    assert read["error"]["data"] == {"scope": "sse"}


async def test_a_batch_is_answered_with_an_array_of_the_requests_answers(
    session: StdioSession,
) -> None:
    batch = [
        modern("tools/list", request_id=1),
        {"jsonrpc": "2.0", "method": "notifications/x"},
        modern("server/discover", request_id=2),
    ]
    replies = await answer(session, line(batch))
    assert [reply["id"] for reply in replies] == [1, 2]


def test_serve_answers_each_line_until_end_of_input(container: Container) -> None:
    stdin = io.BytesIO(
        line(modern("tools/list", request_id=1))
        + b"\n"
        + line({"jsonrpc": "2.0", "method": "notifications/initialized"})
        + b"garbage\n"
        + line(modern("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}, 2))
    )
    stdout = io.BytesIO()
    serve(container.mcp_server(), principal("calculator", "sse"), stdin, stdout)
    replies = [json.loads(raw) for raw in stdout.getvalue().splitlines()]
    assert [reply["id"] for reply in replies] == [1, None, 2]
    assert replies[1]["error"]["code"] == -32700
    assert replies[2]["result"]["structuredContent"]["result"] == 3
    assert stdout.getvalue().endswith(b"\n")


# --- as a process ------------------------------------------------------------------------


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The process environment: no developer ``CALCMCP_*`` settings, a temporary data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALCMCP_")}
    env.update(PYTHONPATH=str(REPO), CALCMCP_DATA_DIR=str(tmp_path / "data"))
    env.update({f"CALCMCP_{name.upper()}": value for name, value in settings.items()})
    return env


def run(
    tmp_path: Path, stdin: bytes, *args: str, **settings: str
) -> subprocess.CompletedProcess[bytes]:
    """``python [args] -m src stdio`` fed ``stdin`` then EOF, in an empty directory."""
    return subprocess.run(
        [sys.executable, *args, "-m", "src", "stdio"],
        input=stdin,
        capture_output=True,
        cwd=tmp_path,
        env=environment(tmp_path, **settings),
        timeout=PROCESS_TIMEOUT,
        check=False,
    )


@pytest.fixture
def process(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A ``calcmcp stdio`` process, killed if a test leaves it running."""
    started = subprocess.Popen(
        [sys.executable, "-m", "src", "stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=environment(tmp_path, log_level="debug"),
    )
    try:
        yield started
    finally:
        if started.poll() is None:
            started.kill()
        started.wait(timeout=PROCESS_TIMEOUT)
        for pipe in (started.stdin, started.stdout, started.stderr):
            if pipe is not None:
                pipe.close()


def test_stdout_carries_only_json_rpc_and_logs_go_to_stderr(tmp_path: Path) -> None:
    conversation = (
        line(INITIALIZE)
        + line({"jsonrpc": "2.0", "method": "notifications/initialized"})
        + line(legacy("tools/list", request_id=1))
        + b"not json\n"
        + line(legacy("tools/call", {"name": "divide", "arguments": {"a": 1, "b": 0}}, 2))
        + line(legacy("tools/call", {"name": "nope"}, 3))
    )
    done = run(tmp_path, conversation, log_level="debug", log_format="console")
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.split(b"\n")
    assert lines[-1] == b""  # every answer ends its line
    replies = [json.loads(raw) for raw in lines[:-1]]
    assert [reply["id"] for reply in replies] == [0, 1, None, 2, 3]
    for reply in replies:
        assert reply["jsonrpc"] == "2.0"
        assert ("result" in reply) != ("error" in reply)
    assert b"MCP over stdio" in done.stderr
    assert b"MCP over stdio" not in done.stdout


def test_end_of_input_ends_the_process_with_exit_code_0(process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(line(modern("tools/list")))
    process.stdin.flush()
    assert json.loads(process.stdout.readline())["id"] == 1
    process.stdin.close()
    assert process.wait(timeout=PROCESS_TIMEOUT) == 0
    assert process.stdout.read() == b""


def test_a_line_of_invalid_utf8_does_not_end_the_session(tmp_path: Path) -> None:
    done = run(tmp_path, b'"\x80"\n' + line(legacy("ping", request_id=1)))
    assert done.returncode == 0, done.stderr.decode()[-500:]
    assert [json.loads(raw)["id"] for raw in done.stdout.splitlines()] == [None, 1]


def test_no_bad_line_ends_the_session(tmp_path: Path) -> None:
    call = json.dumps(modern("tools/call", {"name": "add", "arguments": {"a": 1, "b": "XX"}}))
    bad = [
        b'{"jsonrpc":"2.0","id":1,"method":"p\xffng"}\n',
        call.replace('"id": 1', '"id": 2').encode().replace(b"XX", b"\xff") + b"\n",
        call.replace('"id": 1', '"id": 3').replace('"XX"', "1e999999").encode() + b"\n",
        b"[1, 2]\n",
        b"\xff\xfe\n",
    ]
    done = run(tmp_path, b"".join(bad) + line(legacy("ping", request_id=4)))
    assert done.returncode == 0, done.stderr.decode()[-500:]
    replies = [json.loads(raw) for raw in done.stdout.splitlines()]
    ids = [
        reply["id"] if isinstance(reply, dict) else [r["id"] for r in reply] for reply in replies
    ]
    # JSON text must be UTF-8 as a whole: a bad byte anywhere is a parse error (id unknown)
    assert ids == [None, None, 3, [None, None], None, 4]
    assert replies[0]["error"]["code"] == -32700
    assert replies[1]["error"]["code"] == -32700
    assert replies[2]["result"]["isError"] is True
    assert [member["error"]["code"] for member in replies[3]] == [-32600, -32600]
    assert replies[4]["error"]["code"] == -32700
    assert replies[-1]["result"] == {}


def test_no_input_at_all_exits_cleanly(tmp_path: Path) -> None:
    done = run(tmp_path, b"")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b""


def test_the_stdio_modules_do_not_import_the_http_stack(tmp_path: Path) -> None:
    probe = (
        "import sys, src.adapters.stdio; import src.bootstrap; "
        "print('litestar' in sys.modules, 'uvicorn' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        cwd=tmp_path,
        env=environment(tmp_path),
        timeout=PROCESS_TIMEOUT,
        check=True,
    )
    assert done.stdout.split() == [b"False", b"False"]


def test_a_stdio_session_never_imports_litestar_or_uvicorn(tmp_path: Path) -> None:
    conversation = line(modern("tools/list")) + line(
        modern("tools/call", {"name": "add", "arguments": {"a": 1, "b": 2}}, 2)
    )
    done = run(tmp_path, conversation, "-X", "importtime")
    assert done.returncode == 0
    assert len(done.stdout.splitlines()) == 2
    imported = {
        raw.rsplit(b"|", 1)[1].strip().decode()
        for raw in done.stderr.splitlines()
        if raw.startswith(b"import time:") and raw.count(b"|") == 2
    }
    assert "src.adapters.stdio" in imported  # the probe does see our imports
    top_level = {name.split(".")[0] for name in imported}
    assert not top_level & {"litestar", "uvicorn"}, sorted(top_level & {"litestar", "uvicorn"})


def test_cold_start_to_the_first_tools_list_answer_is_quick(tmp_path: Path) -> None:
    env = environment(tmp_path)
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "src", "stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path,
        env=env,
    )
    try:
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(line(modern("tools/list")))
        child.stdin.flush()
        first = child.stdout.readline()
        elapsed = time.perf_counter() - started
        child.stdin.close()
        assert child.wait(timeout=PROCESS_TIMEOUT) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=PROCESS_TIMEOUT)
        child.stdout and child.stdout.close()
    assert [tool["name"] for tool in json.loads(first)["result"]["tools"]] == ALL_TOOLS
    # a loose bound for busy CI machines; the real figure (about 0.2 s here) is bench/'s job
    assert elapsed < 1.5, f"cold start took {elapsed:.2f} s"
