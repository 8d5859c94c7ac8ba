"""Retention (bot.retention): old message text and payloads are purged in batches, logged without text,
finished outbox entries deleted, open conversations untouched, and report figures unchanged."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.messages import utcnow
from bot.models import Event, Message, OutboxEntry
from bot.reports import build_report
from bot.retention import REMOVED, Retention
from bot.settings import Settings
from handoff.sla import SLAPolicy
from tests.bot.test_engine import Rig

OLD = "how do refunds work? my email is old.customer@example.com"


@pytest.fixture
def rig(any_db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]) -> Rig:
    return Rig(any_db, settings_factory(answer_threshold=0.6, retention_days=30, outbox_retention_days=60,
                                        retention_batch=2))


async def test_old_text_is_purged_in_batches_and_reports_stay(rig: Rig, settings_factory: Callable[..., Settings],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    old_conv = await rig.say(OLD, "m1", who="old")
    await rig.say("and shipping?", "m2", who="old")
    await rig.agents.resolve(old_conv, by="bot")
    open_conv = await rig.say("weather today?", "m3", who="new")
    now = utcnow()
    async with rig.sm() as s, s.begin():  # the first conversation happened 45 days ago
        await s.execute(update(Message).where(Message.conversation_id == old_conv)
                        .values(created_at=now - timedelta(days=45)))
        await s.execute(update(OutboxEntry).where(OutboxEntry.conversation_id == old_conv)
                        .values(created_at=now - timedelta(days=45)))
        await s.execute(update(Message).where(Message.conversation_id == open_conv)
                        .values(created_at=now - timedelta(days=45)))
        await s.execute(update(Event).values(at=now - timedelta(days=45)))
    policy = SLAPolicy.from_settings(rig.pipeline.settings)

    async def report() -> dict[str, object]:
        async with rig.sm() as s:
            r = (await build_report(s, since=now - timedelta(days=50), until=now, policy=policy, now=now)).to_dict()
        r["unanswered"] = sum(u["count"] for u in r["unanswered"])  # clusters are labelled with the words
        return r

    before = await report()
    assert before["conversations"] == 2 and before["bot_answers"] >= 1
    caplog.set_level(logging.DEBUG)
    purged = await Retention(settings=rig.pipeline.settings, sessionmaker=rig.sm).run(now=now)
    assert purged.messages >= 4 and purged.payloads >= 2  # several batches of 2
    async with rig.sm() as s:
        rows = list((await s.execute(select(Message).order_by(Message.id))).scalars())
        payloads = [o.payload for o in (await s.execute(
            select(OutboxEntry).where(OutboxEntry.conversation_id == old_conv))).scalars()]
    assert {m.text for m in rows if m.conversation_id == old_conv} == {REMOVED}
    assert all(m.text != REMOVED for m in rows if m.conversation_id == open_conv)  # still being worked
    assert payloads and all(p == {} for p in payloads)
    assert await report() == before
    assert not any("how do refunds" in r.getMessage() or "old.customer" in r.getMessage() for r in caplog.records)
    assert any("retention: messages" in r.getMessage() for r in caplog.records)
    again = await Retention(settings=rig.pipeline.settings, sessionmaker=rig.sm).run(now=now)
    assert not again  # nothing left to do

    later = settings_factory(retention_days=0, outbox_retention_days=30)
    gone = await Retention(settings=later, sessionmaker=rig.sm).run(now=now)
    async with rig.sm() as s:
        left = (await s.execute(select(func.count()).select_from(OutboxEntry).where(
            OutboxEntry.conversation_id == old_conv))).scalar_one()
    assert gone.outbox_deleted == len(payloads) and left == 0
    assert await report() == before


async def test_tick_runs_at_most_every_check_interval(rig: Rig) -> None:
    retention = Retention(settings=rig.pipeline.settings, sessionmaker=rig.sm)
    assert await retention.tick(now_s=1000.0) is not None
    assert await retention.tick(now_s=1001.0) is None
