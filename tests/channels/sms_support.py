"""Test support for the SMS channel: the whole app around it, on loopback.

`SmsRig` runs the real pieces: a Pipeline on a SQLite file, a Worker delivering through
`bot.sms_deliver.SmsDeliverer(SmsChannel)`, the channel's router on a FastAPI app served by uvicorn on
127.0.0.1:0, and the real `twilio` async client pointed at `tests.fakes.twilio.FakeTwilio`.
The app's public base URL is ``https://support.example.test`` (as behind a TLS proxy): webhooks
are signed for that URL and posted to the local one. `StubKB` is a deterministic test double of
`kb_index.types.Searcher` for these tests only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.agents import Agents
from bot.app import policy_config
from bot.conversations import Conversations
from bot.engine import Pipeline
from bot.models import ChannelIdentity, Conversation, Message, OutboxEntry, OutboxStatus
from bot.settings import Settings
from bot.sms_deliver import SmsDeliverer
from bot.worker import Worker
from channels.sms import INBOUND_PATH, SmsChannel
from handoff.policy import Policy
from kb_index.types import Hit, Searcher
from tests.bot.helpers import make_core
from tests.fakes.twilio import FakeTwilio, inbound_params, new_sid, running_fake, serve, signed_post

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
OUR_NUMBER = "+15550001111"
CUSTOMER = "+14155550123"
PUBLIC = "https://support.example.test"

REFUND_ANSWER = (
    "Refunds go back to the original payment method within 5-10 business days of the return "
    "arriving at our warehouse. You can follow it at https://help.example.test/returns/refund-status "
    "and we email you when it is issued. Store credit is instant."
)
SHIPPING_ANSWER = "Standard shipping takes 3-5 business days. Track it at https://help.example.test/track."


class StubKB:
    """Deterministic Searcher double: a phrase in the query -> a fixed hit; otherwise a weak miss."""

    TABLE: dict[str, tuple[str, str, float]] = {
        "refund": ("refunds", REFUND_ANSWER, 0.92),
        "shipping": ("shipping", SHIPPING_ANSWER, 0.88),
    }

    async def search(
        self, query: str, *, history: Sequence[str] = (), last_article: str | None = None, k: int = 3
    ) -> list[Hit]:
        hits = [
            Hit(
                article_id=art,
                title=art.title(),
                snippet=answer[:60],
                answer=answer,
                score=conf,
                confidence=conf,
            )
            for phrase, (art, answer, conf) in self.TABLE.items()
            if phrase in query.lower()
        ]
        return hits[:k] or [Hit("misc", "Misc", "", "Misc.", 0.05, 0.05)]


@dataclass
class RecordingDesk:
    """A Desk that records what agents would be shown."""

    customer_messages: list[dict[str, Any]] = field(default_factory=list)
    state_changes: list[tuple[str, str, str | None]] = field(default_factory=list)
    delivery_problems: list[dict[str, Any]] = field(default_factory=list)

    async def on_customer_message(
        self,
        session: AsyncSession,
        *,
        conversation: Conversation,
        message: Message,
        hits: Sequence[Hit],
        decision: Any,
    ) -> None:
        self.customer_messages.append(
            {
                "conversation": conversation.id,
                "text": message.text,
                "meta": dict(message.meta or {}),
                "hits": len(hits),
            }
        )

    async def on_outbound(
        self, session: AsyncSession, *, conversation: Conversation, message: Message
    ) -> None:
        return None

    async def on_state_change(
        self, session: AsyncSession, *, conversation: Conversation, old: str, new: str, reason: str | None
    ) -> None:
        self.state_changes.append((old, new, reason))

    async def on_delivery_problem(
        self, session: AsyncSession, *, conversation: Conversation, message: Message
    ) -> None:
        self.delivery_problems.append(
            {
                "conversation": conversation.id,
                "text": message.text,
                "status": message.delivery_status,
                "error_code": message.error_code,
            }
        )


@dataclass
class SmsRig:
    settings: Settings
    sm: async_sessionmaker[AsyncSession]
    fake: FakeTwilio
    channel: SmsChannel
    pipeline: Pipeline
    agents: Agents
    worker: Worker
    desk: RecordingDesk
    local_url: str = ""

    async def text(
        self,
        body: str,
        *,
        from_: str = CUSTOMER,
        sid: str | None = None,
        media: tuple[tuple[str, str], ...] = (),
    ) -> httpx.Response:
        """The customer texts us: Twilio's signed webhook, through the proxy."""
        params = inbound_params(
            sid=sid or new_sid(), from_=from_, to=OUR_NUMBER, body=body, account_sid=ACCOUNT_SID, media=media
        )
        return await self.post_inbound(params)

    async def post_inbound(self, params: dict[str, str], **kw: Any) -> httpx.Response:
        return await signed_post(
            PUBLIC + INBOUND_PATH, params, AUTH_TOKEN, post_url=self.local_url + INBOUND_PATH, **kw
        )

    async def settle(self, within: float = 15.0) -> None:
        """Wait until every bot turn ran and nothing is left to deliver (bounded)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            await self.pipeline.drain()
            async with self.sm() as s:
                owed = (
                    await s.execute(
                        select(OutboxEntry.id).where(
                            OutboxEntry.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING))
                        )
                    )
                ).first()
            if owed is None and not self.pipeline._tasks:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("outbox did not settle in time")

    async def wait_for(self, check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while loop.time() < deadline:
            if await check():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("condition not met in time")

    async def messages(self, direction: str | None = None) -> list[Message]:
        async with self.sm() as s:
            stmt = select(Message).order_by(Message.id)
            if direction:
                stmt = stmt.where(Message.direction == direction)
            return list((await s.execute(stmt)).scalars())

    async def outbox(self) -> list[OutboxEntry]:
        async with self.sm() as s:
            return list((await s.execute(select(OutboxEntry).order_by(OutboxEntry.id))).scalars())

    async def identity(self, number: str = CUSTOMER) -> ChannelIdentity | None:
        async with self.sm() as s:
            return (
                await s.execute(
                    select(ChannelIdentity).where(
                        ChannelIdentity.channel == "sms", ChannelIdentity.address == number
                    )
                )
            ).scalar_one_or_none()

    async def conversations(self) -> list[Conversation]:
        async with self.sm() as s:
            return list((await s.execute(select(Conversation).order_by(Conversation.id))).scalars())


@contextlib.asynccontextmanager
async def sms_rig(
    sm: async_sessionmaker[AsyncSession],
    settings_factory: Callable[..., Settings],
    *,
    kb: Searcher | None = None,
    **overrides: Any,
) -> AsyncIterator[SmsRig]:
    async with running_fake(ACCOUNT_SID, AUTH_TOKEN) as fake:
        values: dict[str, Any] = {
            "public_base_url": PUBLIC,
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "twilio_from_number": OUR_NUMBER,
            "twilio_api_base_url": fake.url,
            "send_timeout": 1.0,
            "answer_threshold": 0.6,
            "low_confidence_limit": 1,
        }
        values.update(overrides)
        settings = settings_factory(**values)
        channel = SmsChannel.from_settings(settings)
        desk = RecordingDesk()
        conversations = Conversations(settings=settings, desk=desk)
        worker = Worker(
            sessionmaker=sm,
            settings=settings,
            deliverers={"sms": SmsDeliverer(channel, sessionmaker=sm)},
            on_failure=conversations.delivery_failed,
        )
        core = make_core(sm, settings, kb=kb or StubKB(), policy=Policy(policy_config(settings)),
                         conversations=conversations, wake=worker.wake)
        pipeline = core.pipeline
        app = FastAPI()
        app.include_router(channel.router(pipeline))
        stop = asyncio.Event()
        async with serve(app) as local_url:
            fake.proxy = (PUBLIC, local_url)
            task = asyncio.get_running_loop().create_task(worker.run(stop))
            rig = SmsRig(settings, sm, fake, channel, pipeline, core.agents, worker, desk, local_url)
            try:
                yield rig
            finally:
                stop.set()
                worker.wake()
                await asyncio.wait_for(task, 10)
                await pipeline.drain()
                await channel.aclose()
