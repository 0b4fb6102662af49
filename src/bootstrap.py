"""The composition root: settings, the container that wires adapters to ports, the app, the CLI.

The only module that knows which adapter fills which port; a swap never touches the core.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import gc
import ipaddress
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import msgspec
from dependency_injector import containers, providers
from dotenv import dotenv_values

from src.adapters.http.listener import REUSE_PORT, ReusePortListener
from src.adapters.logs import (
    BufferedLineHandler,
    ConsoleFormatter,
    JsonLineFormatter,
    LoggingAuditTrail,
)
from src.adapters.mcp.resources import Resources as McpResources
from src.adapters.mcp.server import McpServer
from src.adapters.mcp.tools import Tools
from src.adapters.memory.clients import ClientSeed, LayeredClientRegistry, MemoryClientStore
from src.adapters.memory.event_bus import MemoryEventBus
from src.adapters.memory.mailboxes import MemorySessionMailboxes
from src.adapters.memory.rate_limits import MemoryRateLimiter
from src.adapters.memory.revocations import MemoryRevocationList
from src.adapters.memory.sessions import MemorySessionStore
from src.adapters.memory.stream_slots import MemoryStreamSlots
from src.adapters.memory.tickets import MemoryTicketStore
from src.adapters.system import SecretsIdSource, SystemClock
from src.application.authenticate import Authenticate
from src.application.broadcast import Broadcast
from src.application.calculate import Calculate
from src.application.check_readiness import CheckReadiness
from src.application.client_auth import ClientAuthenticator
from src.application.errors import ApplicationError
from src.application.introspect_token import IntrospectToken
from src.application.issue_stream_ticket import IssueStreamTicket
from src.application.issue_token import IssueToken
from src.application.manage_clients import ManageClients
from src.application.ports import NO_METRICS, HealthCheck
from src.application.recent_events import RecentEvents
from src.application.redeem_stream_ticket import RedeemStreamTicket
from src.application.revoke_token import RevokeToken
from src.application.security import Principal, Resources, canonical_resource
from src.application.stream_events import StreamEvents
from src.domain.calculator import Calculator, CalculatorLimits

if TYPE_CHECKING:  # imported where used: `calcmcp stdio` must start without them
    from src.adapters.jwt.codec import JwtTokenCodec
    from src.adapters.jwt.keys import KeyFile
    from src.adapters.sqlite.clients import SqliteClientStore

log = logging.getLogger("calcmcp")
ENV_PREFIX = "CALCMCP_"
CLIENT_DB = "clients.db"
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
    trusted_proxies: Annotated[
        str,
        _doc(
            "Proxies whose X-Forwarded-For/-Proto are believed: addresses or networks, "
            "comma-separated (default: none)"
        ),
    ] = ""
    data_dir: Annotated[str, _doc("Directory for state kept across restarts")] = "data"
    issuer: Annotated[str, _doc("Token issuer identifier (default: the public URL)")] = ""
    jwt_algorithm: Annotated[
        Literal["ES256", "EdDSA", "HS256"], _doc("Signing algorithm for new tokens")
    ] = "ES256"
    jwt_algorithms: Annotated[
        str, _doc("Algorithms accepted when verifying, comma-separated (default: the signing one)")
    ] = ""
    jwt_secret: Annotated[
        str, _doc("A fixed HS256 secret (32+ bytes) instead of keys kept in the data dir")
    ] = ""
    token_lifetime: Annotated[int, _doc("Access-token lifetime, seconds"), msgspec.Meta(ge=60)] = (
        3600
    )
    clients: Annotated[str, _doc("Extra clients, JSON: [{client_id, client_secret, scopes}]")] = ""
    token_rate: Annotated[
        float, _doc("Token requests a second, per client id and per address"), msgspec.Meta(gt=0)
    ] = 5.0
    token_burst: Annotated[
        float, _doc("Token requests allowed in a burst (failures cost 5)"), msgspec.Meta(ge=1)
    ] = 20.0
    division_digits: Annotated[int, _doc("Significant digits of a quotient")] = 34
    event_log_size: Annotated[int, _doc("Events kept for replay"), msgspec.Meta(ge=1)] = 10_000
    event_log_age: Annotated[float, _doc("Seconds an event is kept for replay")] = 3600.0
    subscriber_queue: Annotated[int, _doc("Events buffered per slow subscriber")] = 1024
    sse_ping_interval: Annotated[float, _doc("Seconds between keep-alive comments")] = 15.0
    sse_retry_ms: Annotated[int, _doc("Reconnection delay told to SSE clients, ms")] = 3000
    sse_max_streams: Annotated[
        int, _doc("Event streams open at once, in total (more: 429)"), msgspec.Meta(ge=1)
    ] = 10_000
    sse_max_streams_per_client: Annotated[
        int, _doc("Event streams one client may have open at once (more: 429)"), msgspec.Meta(ge=1)
    ] = 100
    sse_ticket_lifetime: Annotated[
        float, _doc("Seconds a browser's stream ticket is good for"), msgspec.Meta(gt=0)
    ] = 30.0
    sse_auth_check: Annotated[
        float,
        _doc("Seconds between checks that an open stream's token is not revoked"),
        msgspec.Meta(gt=0),
    ] = 5.0
    mcp_allowed_origins: Annotated[
        str,
        _doc("Origins allowed to call MCP, comma-separated patterns (default: own and localhost)"),
    ] = ""
    mcp_allowed_hosts: Annotated[
        str, _doc("Host headers MCP answers, comma-separated patterns (default: own and localhost)")
    ] = ""
    stdio_client_id: Annotated[str, _doc("Who `calcmcp stdio` acts for")] = "stdio"
    stdio_scopes: Annotated[str, _doc("Scopes `calcmcp stdio` acts with")] = "calculator sse"
    redis_url: Annotated[
        str, _doc("Redis for shared state (several workers or instances), e.g. redis://host:6379/0")
    ] = ""
    redis_prefix: Annotated[str, _doc("Prefix of every Redis key")] = "calcmcp:"
    database_url: Annotated[
        str, _doc("PostgreSQL for clients (several instances); default: SQLite in the data dir")
    ] = ""
    client_secret_key: Annotated[
        str, _doc("Hex key client secrets are hashed with (instances must share it)")
    ] = ""
    log_level: Annotated[str, _doc("Logging level")] = "info"
    log_format: Annotated[
        Literal["auto", "json", "console"],
        _doc("Log lines: JSON, readable text, or auto (text on a terminal, JSON otherwise)"),
    ] = "auto"
    access_log: Annotated[
        bool, _doc("One log line per request (not for /health/* and /metrics)")
    ] = True
    metrics: Annotated[bool, _doc("Count requests, tokens, streams, events; serve /metrics")] = True
    metrics_scope: Annotated[
        Literal["", "metrics", "calculator", "sse"],
        _doc("The scope a bearer token needs to read /metrics (default: none, no token)"),
    ] = ""

    def __post_init__(self) -> None:
        _proxy_list(self.trusted_proxies)  # a malformed list is refused at start-up

    @property
    def proxies(self) -> tuple[str, ...]:
        """The trusted proxies' addresses and networks (none: forwarded headers are ignored)."""
        return _proxy_list(self.trusted_proxies)

    @property
    def production(self) -> bool:
        """Whether this is a production deployment."""
        return self.env.lower() == "production"

    @property
    def base_url(self) -> str:
        """The public base URL: where clients reach this server, and its API's resource URI."""
        url = (self.public_url or f"http://localhost:{self.port}").rstrip("/")
        return canonical_resource(url) or url  # lower-case scheme and host, as tokens carry it

    @property
    def issuer_id(self) -> str:
        """The authorization server's issuer identifier."""
        return (self.issuer or self.base_url).rstrip("/")

    @property
    def accepted_algorithms(self) -> tuple[str, ...]:
        """The algorithms tokens may be verified with."""
        listed = [alg.strip() for alg in self.jwt_algorithms.split(",") if alg.strip()]
        return tuple(listed or [self.jwt_algorithm])


def _proxy_list(configured: str) -> tuple[str, ...]:
    """``CALCMCP_TRUSTED_PROXIES`` as uvicorn's ``forwarded_allow_ips`` wants it.

    Checked here because uvicorn takes anything it cannot parse as a literal host name that never
    matches (``10.0.0.1/8`` included, which is normalised to ``10.0.0.0/8`` here).
    """
    proxies = []
    for item in filter(None, (part.strip() for part in configured.split(","))):
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"TRUSTED_PROXIES: {item!r} is not an address or network") from None
        proxies.append(str(network) if "/" in item else str(network.network_address))
    return tuple(proxies)


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
        raise SystemExit(f"calcmcp: invalid configuration: {_refusal(error)}") from None


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _refusal(error: msgspec.ValidationError) -> str:
    """What is wrong, naming the variable but never repeating its value: a secret pasted into
    the wrong variable must not reach a log."""
    text = str(error)
    unknown = re.fullmatch(r"Object contains unknown field `(\w+)`", text)
    if unknown:
        return f"{ENV_PREFIX}{unknown[1]} is not a setting (see `calcmcp config`)"
    reason, _, where = text.partition(" - at `$.")
    name = where.rstrip("`")
    if not name:  # a check of our own: "NAME: reason"
        name, _, reason = reason.partition(": ")
    reason = _QUOTED.sub("a value", reason)
    if reason.startswith("Invalid enum value"):
        field = {f.encode_name: f for f in msgspec.structs.fields(Settings)}.get(name)
        allowed = get_args(get_args(field.type)[0]) if field else ()
        reason = "must be one of: " + ", ".join(repr(value) for value in allowed)
    return f"{ENV_PREFIX}{name}: {reason}"


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


def key_file(settings: Settings) -> KeyFile:
    """The signing keys kept in the data directory."""
    from src.adapters.jwt.keys import KeyFile  # noqa: PLC0415 - see the imports

    return KeyFile(
        Path(settings.data_dir),
        algorithm=settings.jwt_algorithm,
        token_lifetime=settings.token_lifetime,
    )


def jwt_token_codec(settings: Settings) -> JwtTokenCodec:
    """Tokens signed with the configured HS256 secret, or the keys kept (and rotated) in the
    data directory."""
    from src.adapters.jwt.codec import JwtTokenCodec, KeyRing  # noqa: PLC0415 - see the imports
    from src.adapters.jwt.keys import static_hmac_key  # noqa: PLC0415

    if settings.jwt_secret:
        secret = settings.jwt_secret.encode()
        if settings.jwt_algorithm != "HS256" or len(secret) < 32:
            raise SystemExit(
                "calcmcp: CALCMCP_JWT_SECRET needs CALCMCP_JWT_ALGORITHM=HS256 and 32+ bytes"
            )
        ring = KeyRing(lambda: [static_hmac_key(secret)], algorithm="HS256")
    else:
        keys = key_file(settings)
        ring = KeyRing(keys.load, algorithm=settings.jwt_algorithm, version=keys.mtime)
    return JwtTokenCodec(
        keys=ring, issuer=settings.issuer_id, algorithms=settings.accepted_algorithms
    )


def sqlite_client_store(settings: Settings) -> SqliteClientStore:
    """The client database in the data directory."""
    from src.adapters.sqlite.clients import SqliteClientStore  # noqa: PLC0415 - see the imports

    return SqliteClientStore(Path(settings.data_dir) / CLIENT_DB, client_secret_key(settings))


def redis_client(settings: Settings) -> Any:
    """The Redis client every shared adapter uses (``CALCMCP_REDIS_URL``)."""
    from src.adapters.redis import connect  # noqa: PLC0415 - only when Redis is configured

    return connect(settings.redis_url)


def shared(adapter: str, redis: Any, settings: Settings, **options: Any) -> Any:
    """The Redis adapter called ``adapter``, on ``redis``, under the configured key prefix."""
    import src.adapters.redis as redis_adapters  # noqa: PLC0415 - see redis_client

    return getattr(redis_adapters, adapter)(redis, prefix=settings.redis_prefix, **options)


def by_backend(
    backend: Any, memory: Any, redis_adapter: str, redis: Any, settings: Any, **options: Any
) -> Any:
    """A provider of ``memory(**options)``, or of the Redis adapter with the same options,
    whichever ``backend`` names."""
    return providers.Selector(
        backend,
        memory=providers.Singleton(memory, **options),
        redis=providers.Singleton(shared, redis_adapter, redis, settings, **options),
    )


def postgres_client_store(settings: Settings) -> Any:
    """The client database on PostgreSQL (``CALCMCP_DATABASE_URL``), shared by instances."""
    from src.adapters.postgres.clients import PostgresClientStore  # noqa: PLC0415

    return PostgresClientStore(settings.database_url, client_secret_key(settings))


def client_secret_key(settings: Settings) -> bytes:
    """The key client secrets are hashed with: configured (every instance must share it), or
    kept in the data directory (enough for workers on one machine)."""
    if settings.client_secret_key:
        key = bytes.fromhex(settings.client_secret_key)
        if len(key) < 32:
            raise SystemExit("calcmcp: CALCMCP_CLIENT_SECRET_KEY must be 64+ hex digits")
        return key
    from src.adapters.sqlite.keyfile import load_or_create_key  # noqa: PLC0415

    return load_or_create_key(Path(settings.data_dir))


def metrics_adapter(settings: Settings) -> Any:
    """The metrics: Prometheus's (imported only then), or none when ``CALCMCP_METRICS`` is off."""
    if not settings.metrics:
        return NO_METRICS
    from src.adapters.prometheus.metrics import prometheus_metrics  # noqa: PLC0415

    return prometheus_metrics()


def health_checks(
    settings: Settings, redis: Callable[[], Any], client_store: Callable[[], Any]
) -> list[HealthCheck]:
    """The readiness checks of what is configured: the data directory always, Redis and
    PostgreSQL when their URLs are set (their clients are built only then)."""
    from src.adapters.system.health import DataDirHealthCheck  # noqa: PLC0415

    checks: list[HealthCheck] = [DataDirHealthCheck(Path(settings.data_dir))]
    if settings.redis_url:
        from src.adapters.redis.health import RedisHealthCheck  # noqa: PLC0415

        checks.append(RedisHealthCheck(redis()))
    if settings.database_url:
        from src.adapters.postgres.health import PostgresHealthCheck  # noqa: PLC0415

        checks.append(PostgresHealthCheck(client_store()))
    return checks


def resources(settings: Settings) -> Resources:
    """The resources tokens may be requested for: this server's API (the default), and its
    MCP endpoints (Streamable HTTP, and the legacy HTTP+SSE transport)."""
    return Resources.of(settings.base_url, *mcp_endpoints(settings))


def _patterns(configured: str, defaults: list[str]) -> tuple[str, ...]:
    listed = [item.strip() for item in configured.split(",") if item.strip()]
    return tuple(listed or defaults)


def mcp_http_settings(settings: Settings, kind: Any) -> Any:
    """The MCP transports' settings (``kind``: the HTTP adapter's settings class)."""
    endpoint, sse_endpoint = mcp_endpoints(settings)
    public = urlsplit(settings.base_url)
    local = ["localhost", "127.0.0.1", "[::1]"]
    hosts = [public.netloc, *local, *(f"{host}:*" for host in local)]
    origins = [
        f"{public.scheme}://{public.netloc}",
        *(f"http://{host}:*" for host in local),
        *(f"http://{host}" for host in local),
    ]
    well_known = f"{settings.base_url}/.well-known/oauth-protected-resource"
    return kind(
        endpoint=endpoint,
        sse_endpoint=sse_endpoint,
        metadata={endpoint: f"{well_known}/mcp", sse_endpoint: f"{well_known}/sse"},
        scopes=("calculator", "sse"),
        allowed_origins=_patterns(settings.mcp_allowed_origins, origins),
        allowed_hosts=_patterns(settings.mcp_allowed_hosts, hosts),
    )


def mcp_endpoints(settings: Settings) -> tuple[str, str]:
    """The canonical URIs of the MCP endpoints: Streamable HTTP, and HTTP+SSE."""
    return f"{settings.base_url}/mcp", f"{settings.base_url}/sse"


class Container(containers.DeclarativeContainer):
    """Which adapter fills which port.

    Use cases are singletons, not factories: they hold no per-request state, and a factory
    re-resolves every configuration value it is given on each call (measured: a tenth of a
    calculator request).
    """

    settings = providers.Dependency(instance_of=Settings)

    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(SecretsIdSource)
    metrics = providers.Singleton(metrics_adapter, settings)
    calculator = providers.Singleton(
        Calculator,
        limits=providers.Singleton(
            CalculatorLimits, division_digits=settings.provided.division_digits
        ),
    )
    configured_clients = providers.Singleton(
        MemoryClientStore, seeds=providers.Callable(client_seeds, settings)
    )
    backend = providers.Callable(lambda s: "redis" if s.redis_url else "memory", settings)
    redis = providers.Singleton(redis_client, settings)
    client_store = providers.Selector(
        providers.Callable(lambda s: "postgres" if s.database_url else "sqlite", settings),
        sqlite=providers.Singleton(sqlite_client_store, settings),
        postgres=providers.Singleton(postgres_client_store, settings),
    )
    clients = providers.Singleton(LayeredClientRegistry, configured_clients, client_store)
    token_codec = providers.Singleton(jwt_token_codec, settings)
    revocations = by_backend(backend, MemoryRevocationList, "RedisRevocationList", redis, settings)
    rate_limiter = by_backend(
        backend,
        MemoryRateLimiter,
        "RedisRateLimiter",
        redis,
        settings,
        capacity=settings.provided.token_burst,
        rate=settings.provided.token_rate,
    )
    audit = providers.Singleton(LoggingAuditTrail, forward=providers.List(metrics))
    client_authenticator = providers.Singleton(
        ClientAuthenticator, clients=clients, limiter=rate_limiter
    )
    event_bus = by_backend(
        backend,
        MemoryEventBus,
        "RedisEventBus",
        redis,
        settings,
        log_size=settings.provided.event_log_size,
        log_age=settings.provided.event_log_age,
        queue_size=settings.provided.subscriber_queue,
        metrics=metrics,
    )

    issue_token = providers.Singleton(
        IssueToken,
        authenticator=client_authenticator,
        codec=token_codec,
        clock=clock,
        ids=ids,
        audit=audit,
        lifetime=settings.provided.token_lifetime,
        resources=providers.Callable(resources, settings),
    )
    revoke_token = providers.Singleton(
        RevokeToken,
        authenticator=client_authenticator,
        codec=token_codec,
        revocations=revocations,
        audit=audit,
    )
    introspect_token = providers.Singleton(
        IntrospectToken,
        authenticator=client_authenticator,
        codec=token_codec,
        revocations=revocations,
        audit=audit,
    )
    authenticate = providers.Singleton(Authenticate, codec=token_codec, revocations=revocations)
    manage_clients = providers.Singleton(
        ManageClients, store=client_store, ids=ids, clock=clock, audit=audit
    )
    calculate = providers.Singleton(Calculate, calculator=calculator, events=event_bus, clock=clock)
    broadcast = providers.Singleton(Broadcast, events=event_bus, clock=clock)
    stream_slots = by_backend(
        backend,
        MemoryStreamSlots,
        "RedisStreamSlots",
        redis,
        settings,
        max_streams=settings.provided.sse_max_streams,
        max_per_client=settings.provided.sse_max_streams_per_client,
    )
    stream_tickets = providers.Selector(
        backend,
        memory=providers.Singleton(MemoryTicketStore, clock=clock.provided.now),
        redis=providers.Singleton(shared, "RedisTicketStore", redis, settings),
    )
    stream_events = providers.Singleton(
        StreamEvents,
        events=event_bus,
        clock=clock,
        slots=stream_slots,
        revocations=revocations,
        check_every=settings.provided.sse_auth_check,
    )
    issue_stream_ticket = providers.Singleton(
        IssueStreamTicket,
        tickets=stream_tickets,
        ids=ids,
        clock=clock,
        lifetime=settings.provided.sse_ticket_lifetime,
    )
    redeem_stream_ticket = providers.Singleton(
        RedeemStreamTicket, tickets=stream_tickets, revocations=revocations, clock=clock
    )
    recent_events = providers.Singleton(RecentEvents, events=event_bus)
    sessions = by_backend(backend, MemorySessionStore, "RedisSessionStore", redis, settings)
    mailboxes = by_backend(
        backend, MemorySessionMailboxes, "RedisSessionMailboxes", redis, settings
    )
    mcp_server = providers.Singleton(
        McpServer,
        tools=providers.Singleton(
            Tools, calculate=calculate.provider, broadcast=broadcast.provider
        ),
        resources=providers.Singleton(McpResources, recent_events=recent_events.provider),
        sessions=sessions,
        ids=ids,
        clock=clock,
        metrics=metrics,
    )
    check_readiness = providers.Singleton(
        CheckReadiness,
        checks=providers.Callable(health_checks, settings, redis.provider, client_store.provider),
    )


def configure_logging(settings: Settings) -> None:
    """Log to stderr at the configured level, once per process (workers configure their own)."""
    # Who called the logger, and from which thread or process, is never printed: skip the
    # lookups (logging's documented optimisations; the caller lookup walks the stack).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.setLevel(settings.log_level.upper())
    if not any(getattr(h, "calcmcp", False) for h in root.handlers):
        # one JSON line per record for collectors, written in batches (at most half a second
        # late; warnings and errors at once); readable lines, each at once, for a person at a
        # terminal
        terminal = settings.log_format == "console" or (
            settings.log_format == "auto" and sys.stderr.isatty()
        )
        handler: logging.Handler = (
            logging.StreamHandler(sys.stderr) if terminal else BufferedLineHandler(sys.stderr)
        )
        handler.setFormatter(ConsoleFormatter() if terminal else JsonLineFormatter())
        handler.calcmcp = True  # type: ignore[attr-defined]
        root.addHandler(handler)


def build_container(settings: Settings | None = None) -> Container:
    """A container for ``settings`` (default: from the environment)."""
    settings = settings or load_settings()
    # keys, secrets and the client database live here: only this user may even list them
    Path(settings.data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    return Container(settings=settings)


CLOSE_WITHIN = 1.0
"""Seconds the Redis adapters get to end cleanly at shutdown (uvicorn allows two in all)."""


async def close_adapters(container: Container) -> None:
    """Let the networked adapters end cleanly (give back stream slots, close connections).

    A Redis that does not answer must not hold the shutdown past uvicorn's grace period: what
    the adapters could not give back in :data:`CLOSE_WITHIN` seconds is left to expire there.
    """
    settings: Settings = container.settings()
    if settings.redis_url:
        adapters = (container.event_bus(), container.stream_slots(), container.mailboxes())
        closing = [aclose() for a in adapters if (aclose := getattr(a, "aclose", None))]
        try:
            await asyncio.wait_for(asyncio.gather(*closing), CLOSE_WITHIN)
        except TimeoutError:
            log.warning("Redis did not answer within %s s at shutdown; closed anyway", CLOSE_WITHIN)
        await container.redis().aclose()
    if settings.database_url:
        await container.client_store().close()


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
    from src.adapters.http.mcp import McpServices  # noqa: PLC0415
    from src.adapters.http.mcp_common import McpHttpSettings  # noqa: PLC0415

    container = container or build_container()
    settings: Settings = container.settings()
    configure_logging(settings)
    if not settings.production:
        log.warning(
            "development client '%s' is enabled (documented default secret); "
            "set CALCMCP_ENV=production to turn it off",
            DEV_CLIENT.client_id,
        )
    bus = container.event_bus()
    observed = container.metrics()
    restore: list[Callable[[], None]] = []

    def stop_streams() -> None:
        bus.close()
        for stop in app.state.stop:
            stop()

    def on_startup() -> None:
        restore.append(_on_stop_signal(stop_streams))
        # Everything built so far lives as long as the process: keep it out of the collector's
        # full passes, which would otherwise walk it again and again while streams pile up.
        gc.collect()
        gc.freeze()

    async def on_shutdown() -> None:
        stop_streams()
        for undo in restore:
            undo()
        await close_adapters(container)
        getattr(observed, "close", lambda: None)()  # multi-process metrics: this one has ended

    services = HttpServices(
        issue_token=container.issue_token,
        revoke_token=container.revoke_token,
        introspect_token=container.introspect_token,
        token_codec=container.token_codec,
        authenticate=container.authenticate,
        calculate=container.calculate,
        broadcast=container.broadcast,
        stream_events=container.stream_events,
        issue_stream_ticket=container.issue_stream_ticket,
        redeem_stream_ticket=container.redeem_stream_ticket,
        mcp=McpServices(
            server=container.mcp_server,
            sessions=container.sessions,
            stream_events=container.stream_events,
            mailboxes=container.mailboxes,
            ping_interval=settings.sse_ping_interval,
            retry_ms=settings.sse_retry_ms,
        ),
        readiness=container.check_readiness,
        metrics=observed,
        metrics_page=getattr(observed, "exposition", None),
    )
    http = HttpSettings(
        resource=settings.base_url,
        issuer=settings.issuer_id,
        mcp=mcp_http_settings(settings, McpHttpSettings),
        ping_interval=settings.sse_ping_interval,
        retry_ms=settings.sse_retry_ms,
        metrics_scope=settings.metrics_scope,
        access_log=settings.access_log,
    )
    app = create_http_app(services, http, on_startup=[on_startup], on_shutdown=[on_shutdown])
    return app


APP = "src.bootstrap:create_app"
"""What uvicorn serves (an import string: each worker imports it)."""


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn  # noqa: PLC0415 - only `serve` needs the server

    if args.workers > 1 and not settings.redis_url:
        print(
            "calcmcp: --workers > 1 needs shared state: set CALCMCP_REDIS_URL (the in-memory "
            "event bus, sessions, revocations and limits cannot be shared between processes)",
            file=sys.stderr,
        )
        return 2
    if args.workers > 1:
        # the workers share the data directory: create its keys once, here, not in a race
        Path(settings.data_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
        if not settings.jwt_secret:
            key_file(settings).load()
        client_secret_key(settings)
        if settings.metrics:
            _share_metrics()
    options: dict[str, Any] = {
        "factory": True,
        "host": args.host or settings.host,
        "port": args.port or settings.port,
        "reload": args.reload,
        "workers": args.workers,
        "log_level": settings.log_level.lower(),
        # uvicorn's own X-Forwarded-For/-Proto handling, for the configured proxies only: its
        # default would believe whatever 127.0.0.1 (any local process) claims
        "proxy_headers": bool(settings.proxies),
        "forwarded_allow_ips": list(settings.proxies) or None,
        # behind a proxy that strips the public URL's path prefix (see docs/operations.md)
        "root_path": urlsplit(settings.base_url).path,
        "timeout_graceful_shutdown": 2,
        "server_header": False,
        "access_log": False,  # the application logs each request itself (CALCMCP_ACCESS_LOG)
        # uvicorn's own lines go through our handler (JSON or console, as configured), not its
        "log_config": None,
    }
    if args.workers > 1 and not args.reload and REUSE_PORT:
        return _serve_workers(uvicorn.Config(APP, **options))
    uvicorn.run(APP, **options)
    return 0


def _serve_workers(config: Any) -> int:
    """uvicorn's worker supervisor, each worker on a ``SO_REUSEPORT`` socket of its own (see
    :mod:`src.adapters.http.listener`): the kernel spreads the connections over the workers."""
    from uvicorn.supervisors import Multiprocess  # noqa: PLC0415

    try:
        listener = ReusePortListener(config.host, config.port)
    except OSError as error:
        print(f"calcmcp: cannot listen on {config.host}:{config.port}: {error}", file=sys.stderr)
        return 1
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on http://%s:%d with %d workers, one socket each (Press CTRL+C to quit)",
        config.host,
        listener.port,
        config.workers,
    )
    try:
        Multiprocess(config, sockets=[listener]).run()  # type: ignore[list-item]  # see listener
    finally:
        listener.close()
    return 0


def _share_metrics() -> None:
    """Let the workers add up their metrics: prometheus-client's multi-process mode, with its
    directory set here, before any worker imports prometheus-client (and removed at exit)."""
    from src.adapters.prometheus.multiprocess import shared_directory  # noqa: PLC0415

    stack = contextlib.ExitStack()
    stack.enter_context(shared_directory())
    atexit.register(stack.close)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calcmcp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the HTTP API (REST, SSE, docs)")
    serve.add_argument("--host", help="interface (default: CALCMCP_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: CALCMCP_PORT or 8001)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--reload", action="store_true", help="restart on code changes (dev)")
    commands.add_parser("config", help="print the configuration reference (Markdown)")
    commands.add_parser("stdio", help="speak MCP on stdin/stdout (for desktop MCP clients)")
    keys = commands.add_parser("keys", help="manage the token signing keys in the data dir")
    keys.add_argument("action", choices=["list", "rotate"])
    clients = commands.add_parser("clients", help="manage OAuth clients in the data dir")
    actions = clients.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="register a client; prints its secret once")
    create.add_argument("--scope", action="append", required=True, help="calculator or sse")
    create.add_argument("--id", dest="client_id", help="the client id (default: generated)")
    actions.add_parser("list", help="list clients")
    for action in ("rotate-secret", "disable", "enable", "delete"):
        actions.add_parser(action).add_argument("client_id")
    return parser


async def _clients(args: argparse.Namespace, manage: ManageClients) -> int:
    action = args.action
    if action == "list":
        print(f"{'client_id':<32}{'scopes':<18}{'created (UTC)':<22}{'last used':<22}status")
        for client in await manage.list():
            used = _when(client.last_used_at) if client.last_used_at else "never"
            status = "disabled" if client.disabled else "enabled"
            scopes = " ".join(sorted(client.scopes))
            print(
                f"{client.client_id:<32}{scopes:<18}{_when(client.created_at):<22}{used:<22}{status}"
            )
        return 0
    if action in ("create", "rotate-secret"):
        if action == "create":
            new = await manage.create(args.scope, args.client_id)
        else:
            new = await manage.rotate_secret(args.client_id)
        print(f"client_id:     {new.client_id}\nclient_secret: {new.client_secret}")
        print("(the secret is shown this once; only a keyed hash of it is kept)", file=sys.stderr)
        return 0
    if action == "delete":
        await manage.delete(args.client_id)
    else:
        await manage.set_disabled(args.client_id, action == "disable")
    print(f"{args.client_id}: {action}d" if action != "delete" else f"{args.client_id}: deleted")
    return 0


def _stdio(settings: Settings) -> int:
    from src.adapters.stdio import serve_process  # noqa: PLC0415 - only this command needs it

    container = build_container(settings)
    container.metrics.override(providers.Object(NO_METRICS))  # nothing would ever read them
    principal = Principal(
        client_id=settings.stdio_client_id,
        scopes=frozenset(settings.stdio_scopes.split()),
        token_id="stdio",
        expires_at=float("inf"),
    )
    serve_process(container.mcp_server(), principal)
    return 0


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp))


def _keys(action: str, settings: Settings) -> int:
    if settings.jwt_secret:
        print("calcmcp: CALCMCP_JWT_SECRET is set: the one HS256 secret is the only key")
        return 2
    keys = key_file(settings)
    if action == "rotate":
        new = keys.rotate()
        print(
            f"new signing key {new.kid} ({new.algorithm}); earlier keys verify until their "
            f"tokens expire ({settings.token_lifetime} s); servers pick it up within 30 s"
        )
    print(f"{'kid':<18}{'algorithm':<11}{'created (UTC)':<22}status")
    for key in keys.load():
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(key.created_at))
        status = (
            "signing"
            if key.retired_at is None
            else "verifying until "
            + time.strftime(
                "%Y-%m-%d %H:%M:%S", time.gmtime(key.retired_at + settings.token_lifetime)
            )
        )
        print(f"{key.kid:<18}{key.algorithm:<11}{created:<22}{status}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The ``calcmcp`` command line."""
    args = _parser().parse_args(argv)
    if args.command == "config":
        print(settings_reference())
        return 0
    settings = load_settings()
    configure_logging(settings)
    commands: dict[str, Callable[[], int]] = {
        "serve": lambda: _serve(args, settings),
        "keys": lambda: _keys(args.action, settings),
        "stdio": lambda: _stdio(settings),
        "clients": lambda: _run_clients(args, settings),
    }
    return commands[args.command]()


def _run_clients(args: argparse.Namespace, settings: Settings) -> int:
    try:
        return asyncio.run(_clients(args, build_container(settings).manage_clients()))
    except ApplicationError as refusal:
        print(f"calcmcp: {refusal}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
