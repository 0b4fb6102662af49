"""The ports the use cases need, each a narrow ``typing.Protocol`` named for its role."""

from src.application.ports.clients import ClientRegistry, ClientStore, RegisteredClient
from src.application.ports.events import EventBus, EventRecord, Subscription, SubscriptionClosed
from src.application.ports.health import HealthCheck
from src.application.ports.metrics import NO_METRICS, Metrics, NoMetrics
from src.application.ports.security import AuditEvent, AuditTrail, RateLimiter, RevocationList
from src.application.ports.sessions import (
    Mailbox,
    Session,
    SessionMailboxes,
    SessionStore,
    StreamMessage,
)
from src.application.ports.system import Clock, IdSource
from src.application.ports.tokens import AccessTokenClaims, TokenCodec

__all__ = [
    "NO_METRICS",
    "AccessTokenClaims",
    "AuditEvent",
    "AuditTrail",
    "ClientRegistry",
    "ClientStore",
    "Clock",
    "EventBus",
    "EventRecord",
    "HealthCheck",
    "IdSource",
    "Mailbox",
    "Metrics",
    "NoMetrics",
    "RateLimiter",
    "RegisteredClient",
    "RevocationList",
    "Session",
    "SessionMailboxes",
    "SessionStore",
    "StreamMessage",
    "Subscription",
    "SubscriptionClosed",
    "TokenCodec",
]
