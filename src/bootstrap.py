"""The composition root: settings, the container that wires adapters to ports, the app, the CLI.

The only module that knows which adapter fills which port; a swap never touches the core.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import msgspec
from dependency_injector import containers, providers
from dotenv import dotenv_values

from src.adapters.jwt.codec import JwtTokenCodec
from src.adapters.jwt.keyfile import load_or_create_secret
from src.adapters.memory.clients import ClientSeed, MemoryClientRegistry
from src.adapters.memory.event_bus import MemoryEventBus
from src.adapters.system import SecretsIdSource, SystemClock
from src.application.authenticate import Authenticate
from src.application.broadcast import Broadcast
from src.application.calculate import Calculate
from src.application.issue_token import IssueToken
from src.application.stream_events import StreamEvents
from src.domain.calculator import Calculator, CalculatorLimits

log = logging.getLogger("calcmcp")
ENV_PREFIX = "CALCMCP_"
DEV_CLIENT = ClientSeed(
    client_id="example_client_id",
    secret="example_client_secret",  # the seed's documented development default, never for use
    scopes=frozenset({"calculator", "sse"}),
)


class ClientConfig(msgspec.Struct, forbid_unknown_fields=True):
    """A client registered from configuration."""

    client_id: str
    client_secret: str
    scopes: list[str]


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="upper"):
    """Configuration, from ``CALCMCP_*`` environment variables and an optional ``.env`` file."""

    env: Annotated[str, _doc("`production` turns the development client off")] = "development"
    host: Annotated[str, _doc("Interface to listen on")] = "127.0.0.1"
    port: Annotated[int, _doc("TCP port to listen on")] = 8001
    public_url: Annotated[
        str, _doc("Base URL clients use (default http://localhost:PORT): token issuer, audience")
    ] = ""
    data_dir: Annotated[str, _doc("Directory for state kept across restarts")] = "data"
    jwt_secret: Annotated[str, _doc("HS256 signing secret (default: generated in data dir)")] = ""
    token_lifetime: Annotated[int, _doc("Access-token lifetime, seconds"), msgspec.Meta(ge=60)] = (
        3600
    )
    clients: Annotated[str, _doc("Extra clients, JSON: [{client_id, client_secret, scopes}]")] = ""
    division_digits: Annotated[int, _doc("Significant digits of a quotient")] = 34
    event_log_size: Annotated[int, _doc("Events kept for replay"), msgspec.Meta(ge=1)] = 10_000
    event_log_age: Annotated[float, _doc("Seconds an event is kept for replay")] = 3600.0
    subscriber_queue: Annotated[int, _doc("Events buffered per slow subscriber")] = 1024
    sse_ping_interval: Annotated[float, _doc("Seconds between keep-alive comments")] = 15.0
    sse_retry_ms: Annotated[int, _doc("Reconnection delay told to SSE clients, ms")] = 3000
    log_level: Annotated[str, _doc("Logging level")] = "info"

    @property
    def production(self) -> bool:
        """Whether this is a production deployment."""
        return self.env.lower() == "production"

    @property
    def base_url(self) -> str:
        """The public base URL: the token issuer and the audience of its tokens."""
        return (self.public_url or f"http://localhost:{self.port}").rstrip("/")


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | None = ".env"
) -> Settings:
    """Read settings from ``env_file`` (if it exists), overridden by the environment."""
    values: dict[str, str] = {}
    if env_file and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    ours = {k.removeprefix(ENV_PREFIX): v for k, v in values.items() if k.startswith(ENV_PREFIX)}
    try:
        return msgspec.convert(ours, Settings, strict=False)
    except msgspec.ValidationError as error:
        raise SystemExit(f"calcmcp: invalid configuration: {error} (CALCMCP_* variables)") from None


def settings_reference() -> str:
    """The configuration reference as a Markdown table, generated from :class:`Settings`."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field in msgspec.structs.fields(Settings):
        meta = [m for m in getattr(field.type, "__metadata__", ()) if m.description]
        default = "" if field.default in ("", None) else f"`{field.default}`"
        meaning = meta[0].description if meta else ""
        rows.append(f"| `{ENV_PREFIX}{field.encode_name}` | {default} | {meaning} |")
    return "\n".join(rows)


def client_seeds(settings: Settings) -> list[ClientSeed]:
    """The configured clients, and the development client unless in production."""
    configured = msgspec.json.decode(settings.clients or "[]", type=list[ClientConfig])
    seeds = [
        ClientSeed(client_id=c.client_id, secret=c.client_secret, scopes=frozenset(c.scopes))
        for c in configured
    ]
    if not settings.production:
        seeds.append(DEV_CLIENT)
    return seeds


def signing_secret(settings: Settings) -> bytes:
    """The configured HS256 secret, or the one generated in the data directory."""
    if settings.jwt_secret:
        return settings.jwt_secret.encode()
    return load_or_create_secret(Path(settings.data_dir))


class Container(containers.DeclarativeContainer):
    """Which adapter fills which port.

    Use cases are singletons, not factories: they hold no per-request state, and a factory
    re-resolves every configuration value it is given on each call (measured: a tenth of a
    calculator request).
    """

    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(SecretsIdSource)
    calculator = providers.Singleton(
        Calculator,
        limits=providers.Singleton(
            CalculatorLimits, division_digits=settings.provided.division_digits
        ),
    )
    clients = providers.Singleton(
        MemoryClientRegistry, seeds=providers.Callable(client_seeds, settings)
    )
    token_codec = providers.Singleton(
        JwtTokenCodec,
        secret=providers.Callable(signing_secret, settings),
        issuer=settings.provided.base_url,
    )
    event_bus = providers.Singleton(
        MemoryEventBus,
        log_size=settings.provided.event_log_size,
        log_age=settings.provided.event_log_age,
        queue_size=settings.provided.subscriber_queue,
    )

    issue_token = providers.Singleton(
        IssueToken,
        clients=clients,
        codec=token_codec,
        clock=clock,
        ids=ids,
        lifetime=settings.provided.token_lifetime,
        audience=settings.provided.base_url,
    )
    authenticate = providers.Singleton(Authenticate, codec=token_codec)
    calculate = providers.Singleton(Calculate, calculator=calculator, events=event_bus, clock=clock)
    broadcast = providers.Singleton(Broadcast, events=event_bus, clock=clock)
    stream_events = providers.Singleton(StreamEvents, events=event_bus, clock=clock)


def build_container(settings: Settings | None = None) -> Container:
    """A container for ``settings`` (default: from the environment)."""
    return Container(settings=settings or load_settings())


def _on_stop_signal(callback: Callable[[], None]) -> Callable[[], None]:
    """Run ``callback`` as soon as SIGTERM or SIGINT arrives, before the server's own handler.

    uvicorn waits for open streaming responses before it shuts the application down, so streams
    must be ended at the signal itself. Chaining the handler that is installed when the
    application starts works whatever runs us (one process, ``--workers``, ``--reload``).
    Returns a function that restores the previous handlers.
    """
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(callback)
        chained = previous.get(signum)
        if callable(chained):
            chained(signum, frame)
        elif signum == signal.SIGINT:
            raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[signum] = signal.signal(signum, handler)
        except ValueError:  # not the main thread (e.g. a test client): nothing to chain
            return lambda: None

    def restore() -> None:
        for signum, chained in previous.items():
            signal.signal(signum, chained)

    return restore


def create_app(container: Container | None = None) -> Any:
    """The ASGI application (``uvicorn --factory src.bootstrap:create_app``).

    The HTTP stack is imported here, not at the top: commands that do not serve HTTP (``stdio``)
    must start without paying for Litestar. Typed ``Any`` for the same reason.
    """
    from src.adapters.http.app import HttpServices, HttpSettings  # noqa: PLC0415
    from src.adapters.http.app import create_app as create_http_app  # noqa: PLC0415

    container = container or build_container()
    settings: Settings = container.settings()
    if not settings.production:
        log.warning(
            "development client '%s' is enabled (documented default secret); "
            "set CALCMCP_ENV=production to turn it off",
            DEV_CLIENT.client_id,
        )
    bus = container.event_bus()
    restore: list[Callable[[], None]] = []

    def on_startup() -> None:
        restore.append(_on_stop_signal(bus.close))

    def on_shutdown() -> None:
        bus.close()
        for undo in restore:
            undo()

    services = HttpServices(
        issue_token=container.issue_token,
        authenticate=container.authenticate,
        calculate=container.calculate,
        broadcast=container.broadcast,
        stream_events=container.stream_events,
    )
    http = HttpSettings(
        resource=settings.base_url,
        ping_interval=settings.sse_ping_interval,
        retry_ms=settings.sse_retry_ms,
    )
    return create_http_app(services, http, on_startup=[on_startup], on_shutdown=[on_shutdown])


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn  # noqa: PLC0415 - only `serve` needs the server

    if args.workers > 1:
        print(
            "calcmcp: --workers > 1 needs shared state (CALCMCP_REDIS_URL); the in-memory event "
            "bus, clients and limits cannot be shared between processes",
            file=sys.stderr,
        )
        return 2
    uvicorn.run(
        "src.bootstrap:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        reload=args.reload,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=2,
        server_header=False,
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calcmcp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the HTTP API (REST, SSE, docs)")
    serve.add_argument("--host", help="interface (default: CALCMCP_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: CALCMCP_PORT or 8001)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--reload", action="store_true", help="restart on code changes (dev)")
    commands.add_parser("config", help="print the configuration reference (Markdown)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``calcmcp`` command line."""
    args = _parser().parse_args(argv)
    if args.command == "config":
        print(settings_reference())
        return 0
    settings = load_settings()
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve":
        return _serve(args, settings)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
