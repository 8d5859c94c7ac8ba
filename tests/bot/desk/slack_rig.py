"""The Slack desk rig: real Pipeline, Agents and Worker, the real bolt app and slack_sdk client
against the fake Slack Web API on 127.0.0.1 (tests/fakes/slack.py), requests signed with the real
v0 algorithm. Built the way `bot.app.build_parts` builds it. Used by the tests of every Slack surface.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.agents import Agents
from bot.conversations import Conversations
from bot.db import Base, make_engine, make_sessionmaker
from bot.desk.slack import SlackDesk
from bot.desk.slack_deliver import SlackDeliverer
from bot.desk.slack_home import SlackHome
from bot.desk.slack_notice import SlackNoticeDeliverer
from bot.engine import Pipeline
from bot.messages import Address, InboundMessage
from bot.models import Conversation, OutboxEntry, OutboxStatus
from bot.settings import Settings
from bot.slack_models import SlackSuggestion, SlackThread
from bot.worker import ChannelDeliverer, Worker
from channels.slack import SlackChannel, make_api
from handoff.policy import Policy, PolicyConfig
from tests.bot.helpers import ScriptedChannel, TableSearcher, make_core
from tests.fakes.slack import (
    FakeSlack,
    block_action,
    command_request,
    event_request,
    interactive_request,
    running,
    view_submission,
)

SECRET = "test-signing-secret-123"
AGENTS, SUPERS, VIPS = "C0AGENTS", "C0SUPER", "C0VIP"
AGENT, AGENT2, SUPER = "U0AGENT", "U0AGENT2", "U0SUPER"
KB_TABLE = {"parcel": ("shipping", 0.45), "refund": ("refunds", 0.5), "hours": ("opening-hours", 0.92)}


@dataclass
class Rig:
    fake: FakeSlack
    settings: Settings
    sm: async_sessionmaker[AsyncSession]
    pipeline: Pipeline
    agents: Agents
    desk: SlackDesk
    host: SlackHome
    channel: SlackChannel
    web: ScriptedChannel
    worker: Worker
    http: httpx.AsyncClient
    learned: list[dict[str, Any]] = field(default_factory=list)
    _n: int = 0

    # ---- the customer side ------------------------------------------------------------------------

    async def customer(self, text: str, *, who: str = "sess-1") -> int:
        self._n += 1
        receipt = await self.pipeline.receive(
            InboundMessage(sender=Address("web", who), platform_id=f"{who}-m{self._n}", text=text,
                           display_name="Dana"))
        await self.settle()
        return receipt.conversation_id

    # ---- the Slack side -----------------------------------------------------------------------------

    async def event(self, event: dict[str, Any], *, event_id: str, retry: int | None = None,
                    timestamp: int | None = None, settle: bool = True) -> httpx.Response:
        body, headers = event_request(SECRET, event, event_id=event_id, retry=retry, timestamp=timestamp)
        resp = await self.http.post("/slack/events", content=body, headers=headers)
        if settle:
            await self.settle()
        return resp

    async def reply(self, text: str, *, conv_id: int, user: str = AGENT, ts: str | None = None,
                    esc: bool = False, retry: int | None = None) -> httpx.Response:
        thread = await self.thread(conv_id)
        channel, root = (thread.esc_channel_id, thread.esc_ts) if esc else (thread.channel_id, thread.thread_ts)
        ts = ts or f"{time.time():.6f}"
        event = {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts,
                 "thread_ts": root, "channel_type": "channel", "event_ts": ts}
        return await self.event(event, event_id=f"Ev{ts.replace('.', '')}", retry=retry)

    async def click(self, action_id: str, value: str, *, user: str = AGENT, conv_id: int | None = None,
                    name: str | None = None) -> httpx.Response:
        channel, root = AGENTS, "1.0"
        if conv_id is not None:
            thread = await self.thread(conv_id)
            channel, root = thread.channel_id, thread.thread_ts or "1.0"
        payload = block_action(user=user, action_id=action_id, value=value, channel=channel, message_ts=root,
                               thread_ts=root, name=name)
        body, headers = interactive_request(SECRET, payload)
        resp = await self.http.post("/slack/interactivity", content=body, headers=headers)
        await self.settle()
        return resp

    async def submit(self, view: dict[str, Any], text: str, *, user: str = AGENT) -> httpx.Response:
        body, headers = interactive_request(SECRET, view_submission(user=user, view=view, text=text))
        resp = await self.http.post("/slack/interactivity", content=body, headers=headers)
        await self.settle()
        return resp

    async def command(self, text: str, *, user: str = AGENT) -> str:
        body, headers = command_request(SECRET, user=user, text=text)
        resp = await self.http.post("/slack/commands", content=body, headers=headers)
        assert resp.status_code == 200
        await self.settle()
        return resp.text

    # ---- plumbing -------------------------------------------------------------------------------------

    async def settle(self, within: float = 15.0) -> None:
        """Run bot turns and deliver everything owed (retries included), within a bound."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            await self.pipeline.drain()
            if await self.worker.run_once():
                continue
            if not await self.owed():
                await self.channel.drain()
                return
            await asyncio.sleep(0.05)
        raise AssertionError("deliveries still owed after the time box")

    async def owed(self) -> int:
        async with self.sm() as s:
            return int((await s.execute(select(func.count()).select_from(OutboxEntry).where(
                OutboxEntry.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING))))).scalar_one())

    async def thread(self, conv_id: int) -> SlackThread:
        async with self.sm() as s:
            return (await s.execute(select(SlackThread).where(SlackThread.conversation_id == conv_id))).scalar_one()

    async def conv(self, conv_id: int) -> Conversation:
        async with self.sm() as s:
            conv = await s.get(Conversation, conv_id)
            assert conv is not None
            return conv

    async def suggestions(self, conv_id: int) -> list[SlackSuggestion]:
        async with self.sm() as s:
            return list((await s.execute(select(SlackSuggestion).where(
                SlackSuggestion.conversation_id == conv_id).order_by(SlackSuggestion.id))).scalars())

    async def thread_posts(self, conv_id: int) -> list[dict[str, Any]]:
        thread = await self.thread(conv_id)
        assert thread.thread_ts
        return self.fake.thread(thread.channel_id, thread.thread_ts)

    def ephemerals(self, user: str) -> list[str]:
        return [e["text"] for e in self.fake.ephemerals if e.get("user") == user]


@pytest.fixture
async def rig_factory(tmp_path: Any, settings_factory: Callable[..., Settings]) -> AsyncIterator[Any]:
    engines = []
    stack: list[Any] = []

    async def make(fake: FakeSlack | None = None, *, web_failures: Any = (), db_url: str | None = None,
                   **overrides: Any) -> Rig:
        fake = fake or FakeSlack(users={AGENT: "Ann", AGENT2: "Bo", SUPER: "Sue"})
        if not fake.base_url:
            cm = running(fake)
            await cm.__aenter__()
            stack.append(cm)
        values: dict[str, Any] = dict(
            slack_bot_token="xoxb-test-token", slack_signing_secret=SECRET, slack_api_base_url=fake.base_url,
            slack_agents_channel=AGENTS, slack_supervisors_channel=SUPERS, slack_supervisor_ids=SUPER,
            slack_timeout=0.5, answer_threshold=0.6, suggest_threshold=0.2, low_confidence_limit=1,
        )
        values.update(overrides)
        settings = settings_factory(**values)
        from bot.db import import_all_models

        import_all_models()
        engine = make_engine(db_url or f"sqlite+aiosqlite:///{tmp_path / 'slack.db'}")
        engines.append(engine)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        sm = make_sessionmaker(engine)
        learned: list[dict[str, Any]] = []

        async def learn(**kw: Any) -> None:
            learned.append(kw)

        policy = Policy(PolicyConfig.from_settings(settings))
        kb = TableSearcher(KB_TABLE)
        desk = SlackDesk(settings=settings)
        conversations = Conversations(settings=settings, desk=desk)
        api = make_api(settings)
        web = ScriptedChannel(failures=list(web_failures))
        worker = Worker(sessionmaker=sm, settings=settings, on_failure=conversations.delivery_failed,
                        deliverers={"web": ChannelDeliverer(web),
                                    "slack": SlackDeliverer(sessionmaker=sm, api=api, settings=settings),
                                    "slack_notice": SlackNoticeDeliverer(sessionmaker=sm, api=api)})
        core = make_core(sm, settings, kb=kb, policy=policy, conversations=conversations, wake=worker.wake)
        host = SlackHome(kb=kb, settings=settings, sessionmaker=sm, agents=core.agents, desk=desk, api=api,
                         learn=learn, wake=worker.wake)
        channel = SlackChannel(settings, host=host, api=api)
        app = FastAPI()
        app.include_router(channel.router())
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        stack.append(http)
        return Rig(fake, settings, sm, core.pipeline, core.agents, desk, host, channel, web, worker, http, learned)

    yield make
    for item in reversed(stack):
        if isinstance(item, httpx.AsyncClient):
            await item.aclose()
        else:
            await item.__aexit__(None, None, None)
    for engine in engines:
        await engine.dispose()


@pytest.fixture
async def rig(rig_factory: Any) -> Rig:
    return await rig_factory()
