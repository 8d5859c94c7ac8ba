"""The channel contract, errors and registry.

A channel owns a platform's protocol only: it verifies requests, parses payloads into
`InboundMessage`s and sends `OutboundMessage`s. It never touches the database or the index;
everything it needs from the application comes through the `ChannelHost` it is given.

Errors::

    ChannelError
     ├── BadRequest            (the platform or client sent something we refuse; 4xx)
     └── SendError             (an outbound call failed)
          ├── TransientSendError   (retry later; carries retry_after seconds if the platform said)
          └── PermanentSendError   (retrying cannot help; carries the platform's code)
               └── RecipientOptedOut  (the recipient unsubscribed, e.g. Twilio 21610)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol, runtime_checkable

from fastapi import APIRouter

from bot.messages import Address, InboundMessage, OutboundMessage, Receipt, SendResult, TranscriptItem


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

    Example::

        channel = CHANNELS["web"](settings)
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
