"""A split SMS reply is one outbox entry per part: a worker killed between parts (or mid-part, its
lease running out) never makes another resend a part Twilio already took; each part's SID is stored."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import policy_config
from bot.messages import Address, InboundMessage, utcnow
from bot.models import OutboxEntry, OutboxStatus
from bot.settings import Settings
from bot.worker import ChannelDeliverer, Worker
from channels.sms import SmsChannel
from channels.sms_segments import plan_parts
from handoff.policy import Policy
from tests.bot.helpers import make_core
from tests.channels.sms_support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CUSTOMER,
    OUR_NUMBER,
    PUBLIC,
    REFUND_ANSWER,
    StubKB,
)
from tests.fakes.twilio import FakeTwilio, running_fake

LONG = REFUND_ANSWER + " " + REFUND_ANSWER.upper()


class LongKB(StubKB):
    TABLE = {"refund": ("refunds", LONG, 0.95)}


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with running_fake(ACCOUNT_SID, AUTH_TOKEN) as f:
        yield f


def _settings(settings_factory: Callable[..., Settings], fake: FakeTwilio) -> Settings:
    return settings_factory(public_base_url=PUBLIC, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                            twilio_from_number=OUR_NUMBER, twilio_api_base_url=fake.url, send_timeout=1.0,
                            sms_max_segments=1, outbox_lease_seconds=30)


def _process(sm: async_sessionmaker[AsyncSession], settings: Settings, name: str) -> tuple[Worker, SmsChannel]:
    """One worker process's pieces: its own channel (no shared memory) and worker id."""
    channel = SmsChannel.from_settings(settings)
    return Worker(sessionmaker=sm, settings=settings, deliverers={"sms": ChannelDeliverer(channel)},
                  worker_id=name), channel


async def _owed_reply(sm: async_sessionmaker[AsyncSession], settings: Settings) -> list[OutboxEntry]:
    pipeline = make_core(sm, settings, kb=LongKB(), policy=Policy(policy_config(settings))).pipeline
    await pipeline.receive(InboundMessage(Address("sms", CUSTOMER), "SM" + "1" * 32, "where is my refund"))
    await pipeline.drain()
    async with sm() as s:
        return list((await s.execute(select(OutboxEntry).order_by(OutboxEntry.id))).scalars())


async def _entries(sm: async_sessionmaker[AsyncSession]) -> list[OutboxEntry]:
    async with sm() as s:
        return list((await s.execute(select(OutboxEntry).order_by(OutboxEntry.id))).scalars())


async def test_a_worker_killed_between_and_during_parts_never_resends_one(
    db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings], fake: FakeTwilio
) -> None:
    settings = _settings(settings_factory, fake)
    parts = plan_parts(LONG, max_segments=1)
    assert len(parts) >= 3
    entries = await _owed_reply(db, settings)
    assert [e.payload["text"] for e in entries] == parts  # one entry per part, in order
    assert [e.payload["part"] for e in entries] == list(range(1, len(parts) + 1))
    assert len({e.message_id for e in entries}) == 1

    a, channel_a = _process(db, settings, "worker-a")
    assert await a.run_once() == 1  # only part 1 is claimable: later parts wait for it
    assert fake.bodies() == parts[:1]
    # worker A claims part 2 and is SIGKILLed before sending it: its memory is gone, its lease stays
    (claimed,) = await a.claim(10)
    assert claimed.payload["part"] == 2
    await channel_a.aclose()

    b, channel_b = _process(db, settings, "worker-b")
    assert await b.run_once() == 0  # part 2 is leased to the dead worker; the later parts wait behind it
    async with db() as s, s.begin():  # ... until the lease runs out
        await s.execute(update(OutboxEntry).where(OutboxEntry.id == claimed.id)
                        .values(lease_until=utcnow() - timedelta(seconds=1)))
    while await b.run_once():
        pass
    await channel_b.aclose()

    assert fake.bodies() == parts  # every part exactly once, in order, across the crash
    done = await _entries(db)
    assert all(e.status == OutboxStatus.DELIVERED for e in done)
    assert [e.platform_id for e in done] == [m["sid"] for m in fake.messages]  # each SID stored
    assert [e.claimed_by for e in done] == ["worker-a"] + ["worker-b"] * (len(parts) - 1)


async def test_a_dead_lettered_part_cancels_the_rest_of_the_reply(
    db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings], fake: FakeTwilio
) -> None:
    settings = _settings(settings_factory, fake)
    entries = await _owed_reply(db, settings)
    worker, channel = _process(db, settings, "w")
    fake.accept_next()
    fake.fail_next(400, code=21211)  # invalid 'To' number: permanent
    while await worker.run_once():
        pass
    await channel.aclose()
    statuses = [e.status for e in await _entries(db)]
    assert statuses[:2] == [OutboxStatus.DELIVERED, OutboxStatus.DEAD]
    assert statuses[2:] == [OutboxStatus.CANCELLED] * (len(entries) - 2)
    assert len(fake.bodies()) == 1


