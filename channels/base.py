"""The channel contract and its errors.

A channel owns a platform's protocol only: it verifies requests, parses payloads into
`InboundMessage`s and sends `OutboundMessage`s. It never touches the database or the index;
everything it needs from the application comes through the `ChannelHost` it is given.

Errors: the `ChannelError` tree (`BadRequest`, `SendError` -> `TransientSendError` /
`PermanentSendError` -> `RecipientOptedOut`) is drawn and defined in `bot.messages` and
re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol, runtime_checkable

from fastapi import APIRouter

from bot.messages import (
    Address,
    BadRequest,
    ChannelError,
    InboundMessage,
    OutboundMessage,
    PermanentSendError,
    Receipt,
    RecipientOptedOut,
    SendError,
    SendResult,
    TranscriptItem,
    TransientSendError,
)

# The errors are part of the send contract the application and the channels share, so they are
# defined next to the message shapes in `bot.messages` (which `bot.engine` may import) and
# re-exported here, where every channel and the worker import them from.
__all__ = [
    "BadRequest",
    "Channel",
    "ChannelError",
    "ChannelHost",
    "CollectingChannel",
    "PermanentSendError",
    "RecipientOptedOut",
    "SendError",
    "TransientSendError",
]


class ChannelHost(Protocol):
    """What the application offers a channel. Implemented by `bot.engine.Pipeline`."""

    async def receive(self, message: InboundMessage) -> Receipt:
        """Store the message idempotently (before the channel acknowledges) and schedule the bot turn."""
        ...

    async def history(self, address: Address, *, after_id: int = 0, limit: int = 500) -> Sequence[TranscriptItem]:
        """The customer-visible transcript of the address's latest conversation, after a message id."""
        ...

    async def request_human(self, address: Address) -> None:
        """The customer pressed "talk to a human"."""
        ...

    async def delivery_status(
        self, channel: str, platform_id: str, status: str, *, error_code: str | None = None
    ) -> None:
        """A platform reported the delivery status of a message we sent (Twilio status callback)."""
        ...


@runtime_checkable
class Channel(Protocol):
    """A customer-facing platform adapter.

    There is no registry: `bot.app.build_parts` builds each enabled channel by name.

    Example::

        channel = WebChatChannel.from_settings(settings)
        app.include_router(channel.router(host))
        await channel.send(Address("web", session_id), OutboundMessage("Hello!"))
    """

    name: ClassVar[str]

    def router(self, host: ChannelHost) -> APIRouter: ...

    async def send(self, to: Address, message: OutboundMessage) -> SendResult: ...

    async def aclose(self) -> None: ...


class CollectingChannel:
    """A channel that keeps what it is asked to send, in order (like Rasa's CollectingOutputChannel)."""

    name: ClassVar[str] = "collect"

    def __init__(self) -> None:
        self.sent: list[tuple[Address, OutboundMessage]] = []

    def router(self, host: ChannelHost) -> APIRouter:
        return APIRouter()

    async def send(self, to: Address, message: OutboundMessage) -> SendResult:
        self.sent.append((to, message))
        return SendResult(platform_id=f"collect-{len(self.sent)}")

    async def aclose(self) -> None:
        return None
