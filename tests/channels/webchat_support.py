"""Test support for the web chat channel: an in-memory `ChannelHost` double and a loopback server.

`MemoryHost` is a test double of `bot.engine.Pipeline`'s customer side (store idempotently on
(channel, platform_id), transcript after an id, "talk to a human"); it keeps everything in lists.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import websockets
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection

from bot.messages import Address, InboundMessage, OutboundMessage, Receipt, TranscriptItem, utcnow
from channels.webchat import WebChatChannel
from tests.fakes.server import serve


@dataclass
class Stored:
    item: TranscriptItem
    address: Address


@dataclass
class MemoryHost:
    """Stores like the pipeline; optionally answers each message through the channel (an echo bot)."""

    channel: WebChatChannel | None = None
    echo: bool = False
    fail_next: int = 0
    messages: list[Stored] = field(default_factory=list)
    humans: list[Address] = field(default_factory=list)
    receive_calls: int = 0
    _next: int = 1

    def _add(self, address: Address, **kw: Any) -> TranscriptItem:
        item = TranscriptItem(id=self._next, created_at=utcnow(), **kw)
        self._next += 1
        self.messages.append(Stored(item, address))
        return item

    async def receive(self, message: InboundMessage) -> Receipt:
        self.receive_calls += 1
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("database is down (test)")
        for s in self.messages:
            if s.item.platform_id == message.platform_id and s.address.channel == message.channel:
                return Receipt(message_id=s.item.id, conversation_id=1, duplicate=True)
        item = self._add(message.sender, direction="in", author_kind="customer", text=message.text,
                         platform_id=message.platform_id)
        if self.echo and self.channel is not None:
            asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(
                self.reply(message.sender, f"echo: {message.text}")))
        return Receipt(message_id=item.id, conversation_id=1, duplicate=False)

    async def reply(self, to: Address, text: str, author_kind: str = "bot") -> int:
        """Store an outbound message and deliver it the way the worker does."""
        item = self._add(to, direction="out", author_kind=author_kind, text=text)
        assert self.channel is not None
        await self.channel.send(to, OutboundMessage(text=text, message_id=item.id, author_kind=author_kind))
        return item.id

    async def history(self, address: Address, *, after_id: int = 0, limit: int = 500) -> Sequence[TranscriptItem]:
        items = [s.item for s in self.messages if s.address == address and s.item.id > after_id]
        return items[:limit]

    async def request_human(self, address: Address) -> None:
        self.humans.append(address)

    async def delivery_status(self, channel: str, platform_id: str, status: str, *,
                              error_code: str | None = None) -> None:
        return None

    def stored_for(self, sid: str) -> list[TranscriptItem]:
        return [s.item for s in self.messages if s.address == Address("web", sid)]


@dataclass
class WebEnv:
    url: str
    channel: WebChatChannel
    host: MemoryHost

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws/chat"

    async def token(self) -> str:
        import httpx

        async with httpx.AsyncClient(timeout=5) as client:
            r = await client.post(self.url + "/api/web/session")
            r.raise_for_status()
            return str(r.json()["token"])

    @contextlib.asynccontextmanager
    async def connect(self, token: str | None = None, *, auth: bool = True, **kw: Any) -> AsyncIterator[Client]:
        """A socket that sends ``{"type": "auth", "token": ...}`` first (as the widget does) unless `auth` is off."""
        token = token if token is not None else await self.token()
        async with websockets.connect(self.ws_url, open_timeout=5, **kw) as ws:
            client = Client(ws, token)
            if auth:
                await client.send({"type": "auth", "token": token})
            yield client


@dataclass
class Client:
    ws: ClientConnection
    token: str

    @property
    def sid(self) -> str:
        return self.token.split(".")[1]

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    async def recv(self, wait: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), wait)
        frame: dict[str, Any] = json.loads(raw)
        return frame

    async def recv_type(self, kind: str, wait: float = 5.0) -> dict[str, Any]:
        """The next frame of type `kind`, skipping others (typing, ready...)."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            left = deadline - asyncio.get_running_loop().time()
            frame = await self.recv(max(0.01, left))
            if frame["type"] == kind:
                return frame

    async def nothing_for(self, seconds: float) -> list[dict[str, Any]]:
        """Frames received within `seconds` (expected to be none or only cosmetic ones)."""
        got: list[dict[str, Any]] = []
        with contextlib.suppress(TimeoutError):
            while True:
                got.append(await self.recv(seconds))
        return got


@contextlib.asynccontextmanager
async def web_env(**channel_kw: Any) -> AsyncIterator[WebEnv]:
    kw: dict[str, Any] = {"secret_key": "test-secret-key", "sessions_per_minute": 10_000}
    kw.update(channel_kw)
    echo = kw.pop("echo", False)
    channel = WebChatChannel(**kw)
    host = MemoryHost(channel=channel, echo=echo)
    app = FastAPI()
    app.include_router(channel.router(host))
    async with serve(app) as url:
        try:
            yield WebEnv(url, channel, host)
        finally:
            await channel.aclose()
