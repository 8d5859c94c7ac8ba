"""The common message shapes every channel translates to and from.

A channel turns a platform event into an `InboundMessage` and an `OutboundMessage` into a
platform call. Nothing here knows about the database, the KB or handoff.

The send errors live here too (re-exported by `channels.base`), so the application can tell
them apart without importing a channel::

    ChannelError
     ├── BadRequest            (the platform or client sent something we refuse; 4xx)
     └── SendError             (an outbound call failed)
          ├── TransientSendError   (retry later; carries retry_after seconds if the platform said)
          └── PermanentSendError   (retrying cannot help; carries the platform's code)
               └── RecipientOptedOut  (the recipient unsubscribed, e.g. Twilio 21610)
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


class ChannelError(Exception):
    """Base of every channel error."""


class BadRequest(ChannelError):
    def __init__(self, detail: str, status_code: int = 400) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status_code = status_code


class SendError(ChannelError):
    def __init__(self, detail: str, *, code: str | int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code


class TransientSendError(SendError):
    def __init__(self, detail: str, *, code: str | int | None = None, retry_after: float | None = None) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after


class PermanentSendError(SendError):
    pass


class RecipientOptedOut(PermanentSendError):
    pass
