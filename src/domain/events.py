"""Domain events: what happened, and who may see it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from src.domain.calculator import Calculation
from src.domain.errors import InvalidMessage, UnknownEventType

MAX_MESSAGE_LENGTH = 4096
"""Longest broadcast message, in characters."""


class EventType(enum.StrEnum):
    """The kinds of event a subscriber can select."""

    BROADCAST = "broadcast"
    CALCULATION = "calculation"

    @classmethod
    def parse(cls, name: str) -> EventType:
        """Return the event type called ``name`` or refuse it."""
        try:
            return cls(name)
        except ValueError:
            known = ", ".join(kind.value for kind in cls)
            raise UnknownEventType(f"unknown event type; expected one of: {known}") from None


@dataclass(frozen=True, slots=True)
class Audience:
    """Who may see an event: everyone (``client_id is None``) or one client."""

    client_id: str | None = None

    def admits(self, client_id: str) -> bool:
        """Whether a subscriber acting for ``client_id`` may see the event."""
        return self.client_id is None or self.client_id == client_id


EVERYONE = Audience()


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageBroadcast:
    """A message a client sent to every subscriber."""

    type: ClassVar[EventType] = EventType.BROADCAST
    message: str
    sender: str
    occurred_at: float

    def __post_init__(self) -> None:
        if not self.message:
            raise InvalidMessage("message must not be empty")
        if len(self.message) > MAX_MESSAGE_LENGTH:
            raise InvalidMessage(f"message is longer than {MAX_MESSAGE_LENGTH} characters")

    @property
    def audience(self) -> Audience:
        """Broadcasts are for everyone."""
        return EVERYONE


@dataclass(frozen=True, slots=True, kw_only=True)
class CalculationPerformed:
    """A calculation one client performed; only that client's subscribers see it."""

    type: ClassVar[EventType] = EventType.CALCULATION
    calculation: Calculation
    client_id: str
    occurred_at: float

    @property
    def audience(self) -> Audience:
        """Only the client that asked for the calculation."""
        return Audience(self.client_id)


Event: TypeAlias = MessageBroadcast | CalculationPerformed
