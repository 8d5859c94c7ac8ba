"""Web chat resume against the real pipeline and outbox worker, on a loopback uvicorn: a reply the
outbox marks done while the customer's socket is down is shown after the reconnect, even when a
message with a higher id already reached the customer (docs/webchat.md, "Nothing lost, nothing twice")."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import policy_config
from bot.models import Message, OutboxEntry
from bot.settings import Settings
from bot.worker import ChannelDeliverer, Worker
from channels.webchat import WebChatChannel
from handoff.policy import Policy
from tests.bot.helpers import Core, TableSearcher, make_core
from tests.fakes.server import serve


class WidgetClient:
    """What widget.js does with the protocol: resume from its cursor, show each message id once."""

    def __init__(self, url: str, token: str) -> None:
        self.ws_url = url.replace("http://", "ws://") + "/ws/chat"
        self.token = token
        self.cursor = 0  # what the next resume sends as `after`
        self.server_cursor = False  # the server hands out `cursor` in history frames
        self.shown: dict[int, dict[str, Any]] = {}
        self.pushed_twice = 0
        self.ws: Any = None
        self.acks: dict[str, int] = {}

    @property
    def sid(self) -> str:
        return self.token.split(".")[1]

    async def connect(self) -> None:
        self.ws = await websockets.connect(self.ws_url, open_timeout=5)
        await self.ws.send(json.dumps({"type": "auth", "token": self.token}))
        ready = await self.until("ready")
        self.token = ready["token"]
        await self.ws.send(json.dumps({"type": "resume", "after": self.cursor}))
        await self.until("history")

    async def close(self) -> None:
        await self.ws.close()

    def _show(self, m: dict[str, Any], *, live: bool) -> None:
        if m["id"] in self.shown:
            self.pushed_twice += live
            return
        self.shown[m["id"]] = m

    def _frame(self, f: dict[str, Any]) -> None:
        if f["type"] == "message":
            self._show(f, live=True)
            if not self.server_cursor:  # the protocol before `cursor`: the highest id the server pushed
                self.cursor = max(self.cursor, f["id"])
        elif f["type"] == "history":
            for m in f["messages"]:
                self._show(m, live=False)
            self.server_cursor = "cursor" in f
            self.cursor = f["cursor"] if "cursor" in f else max([self.cursor, *(m["id"] for m in f["messages"])])
        elif f["type"] == "ack":
            self.acks[f["client_id"]] = f["id"]

    async def until(self, kind: str, wait: float = 5.0) -> dict[str, Any]:
        while True:
            f = json.loads(await asyncio.wait_for(self.ws.recv(), wait))
            self._frame(f)
            if f["type"] == kind:
                return dict(f)

    async def settle(self, seconds: float = 0.3) -> None:
        with contextlib.suppress(TimeoutError):
            while True:
                self._frame(json.loads(await asyncio.wait_for(self.ws.recv(), seconds)))

    def texts(self) -> list[str]:
        return [self.shown[i]["text"] for i in sorted(self.shown)]


class Rig:
    def __init__(self, sm: async_sessionmaker[AsyncSession], url: str, core: Core, worker: Worker) -> None:
        self.sm, self.url, self.worker = sm, url, worker
        self.pipeline, self.agents = core.pipeline, core.agents

    async def client(self) -> WidgetClient:
        async with httpx.AsyncClient(timeout=5) as http:
            token = (await http.post(self.url + "/api/web/session")).raise_for_status().json()["token"]
        c = WidgetClient(self.url, token)
        await c.connect()
        return c

    async def deliver_all(self) -> None:
        await self.pipeline.drain()
        while await self.worker.run_once():
            pass

    async def outbox_status(self, message_id: int) -> str:
        async with self.sm() as s:
            return str((await s.execute(select(OutboxEntry.status).where(OutboxEntry.message_id == message_id)))
                       .scalar_one())

    async def conversation_of(self, sid: str) -> int:
        async with self.sm() as s:
            row = (await s.execute(select(Message.conversation_id).where(Message.platform_id.startswith(sid))
                                   .limit(1))).scalar_one()
        return int(row)


@pytest.fixture
async def rig(db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]) -> AsyncIterator[Rig]:
    settings = settings_factory(answer_threshold=0.6)
    channel = WebChatChannel(secret_key="test-secret-key", sessions_per_minute=10_000)
    core = make_core(db, settings, kb=TableSearcher({"refund": ("refunds", 0.93)}),
                     policy=Policy(policy_config(settings)))
    pipeline = core.pipeline
    worker = Worker(sessionmaker=db, settings=settings, deliverers={"web": ChannelDeliverer(channel)})
    app = FastAPI()
    app.include_router(channel.router(pipeline))
    async with serve(app) as url:
        try:
            yield Rig(db, url, core, worker)
        finally:
            await pipeline.drain()
            await channel.aclose()


async def test_a_reply_with_a_lower_id_delivered_while_the_socket_reconnects_is_shown(rig: Rig) -> None:
    c = await rig.client()
    await c.ws.send(json.dumps({"type": "message", "client_id": "q1", "text": "I need a person please"}))
    await c.until("ack")
    await rig.deliver_all()  # the bot hands the conversation to people
    await c.settle()
    cid = await rig.conversation_of(c.sid)

    # The agent's reply is committed (its outbox entry owed) before the customer's next message ...
    reply_id = await rig.agents.reply(cid, text="Hi, Ana here.", author_id="U1", author_name="Ana")
    assert reply_id is not None
    await c.ws.send(json.dumps({"type": "message", "client_id": "q2", "text": "hello? anyone?"}))
    await c.until("ack")
    await c.settle()  # ... whose mirror (a higher id) reaches the socket first
    assert c.acks["q2"] > reply_id and max(c.shown) > reply_id and reply_id not in c.shown

    # The socket drops; the worker sends the reply meanwhile, to no socket, and marks it done.
    await c.close()
    await rig.deliver_all()
    assert await rig.outbox_status(reply_id) == "delivered"

    await c.connect()  # the widget's reconnect: resume from its cursor
    await c.settle()
    assert reply_id in c.shown, f"the agent's reply {reply_id} was never shown: {c.texts()}"
    assert c.texts().count("Hi, Ana here.") == 1
    await c.close()


async def test_resume_lists_each_message_once_and_in_id_order_across_reconnects(rig: Rig) -> None:
    c = await rig.client()
    for n in range(3):
        await c.ws.send(json.dumps({"type": "message", "client_id": f"m{n}", "text": f"refund question {n}"}))
        await c.until("ack")
        await rig.deliver_all()
    await c.settle()
    await c.close()
    again = WidgetClient(rig.url, c.token)  # a reload without the browser's cache
    await again.connect()
    await again.settle()
    assert again.texts() == c.texts() and len(again.shown) == len(c.shown) >= 4
    await again.close()
