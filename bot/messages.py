"""The common message shapes every channel translates to and from.

A channel turns a platform event into an `InboundMessage` and an `OutboundMessage` into a
platform call. Nothing here knows about the database, the KB or handoff.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Address:
    """Where a customer is on a channel: ("sms", "+15551234567"), ("web", "<session id>")."""

    channel: str
    address: str


@dataclass(frozen=True, slots=True)
class Attachment:
    url: str
    content_type: str = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A customer message as it reached us.

    `platform_id` is the platform's own id for the message (Twilio MessageSid, the web
    widget's client message id, ...). (channel, platform_id) is unique: a retry of the same
    platform id is the same message.
    """

    sender: Address
    platform_id: str
    text: str
    attachments: tuple[Attachment, ...] = ()
    received_at: datetime = field(default_factory=utcnow)
    display_name: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def channel(self) -> str:
        return self.sender.channel


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """Something we owe a customer. `message_id` is our stored message id (idempotency key)."""

    text: str
    message_id: int | None = None
    conversation_id: int | None = None
    author_kind: str = "bot"
    author_name: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What the platform said when it accepted a message."""

    platform_id: str | None = None
    status: str = "sent"


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the pipeline tells a channel after storing an inbound message."""

    message_id: int
    conversation_id: int
    duplicate: bool
    text: str | None = None  # the text as stored (personal data masked): what the customer's widget shows


@dataclass(frozen=True, slots=True)
class TranscriptItem:
    """One stored message as a channel may show it back to the customer (web chat history)."""

    id: int
    direction: str  # "in" | "out"
    author_kind: str  # customer | bot | agent | supervisor | system
    text: str
    created_at: datetime
    platform_id: str | None = None
    author_name: str | None = None
