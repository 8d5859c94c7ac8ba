"""Reports over what the real pipeline logs: a reopened handed-off conversation is not automated."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.reports import build_report
from bot.settings import Settings
from tests.bot.test_engine import Rig


@pytest.fixture
def rig(db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]) -> Rig:
    return Rig(db, settings_factory(answer_threshold=0.6))


async def test_reopened_handed_off_conversation_is_not_automated(rig: Rig) -> None:
    cid = await rig.say("weather today?", "p1", who="c1")  # low confidence: handed off
    await rig.agents.reply(cid, text="Sunny, I think.", author_id="U1", author_name="Una")
    await rig.agents.resolve(cid, by="U1")
    again = await rig.say("and a refund?", "p2", who="c1")  # within 24 h: the same conversation reopens
    assert again == cid
    await rig.agents.resolve(cid, by="bot")
    conv = await rig.conv(cid)
    assert conv.handed_off_at is None and conv.first_human_response_at is None  # the reopen cleared them
    async with rig.sm() as s:
        r = await build_report(s)
    assert r.conversations == 1 and r.reopened == 1 and r.bot_answers == 1
    assert r.automated_resolutions == 0 and r.automated_resolution_rate == 0.0
    assert r.contained_rate == 0.0
    assert r.first_response["count"] == 1 and r.first_response["p50_s"] is not None
    assert r.fcr["eligible"] == 1 and r.fcr["one_touch"] == 0  # it came back within 7 days
    assert r.aht["U1"]["resolved"] == 1


async def test_bot_only_conversation_is_automated(rig: Rig) -> None:
    cid = await rig.say("how do refunds work?", "q1", who="c2")
    await rig.agents.resolve(cid, by="idle")
    async with rig.sm() as s:
        r = await build_report(s)
    assert (r.automated_resolutions, r.automated_pending, r.automated_resolution_rate) == (1, 1, 1.0)
    assert r.top_articles == [{"article_id": "refunds", "answers": 1}]


def test_duration_buckets_split_at_their_bounds() -> None:
    from bot.report_metrics import buckets, durations

    assert buckets([0, 299.9, 300, 899, 900, 3600, 14400, 86399, 86400, 10**7]) == {
        "<5m": 2, "5-15m": 2, "15-60m": 1, "1-4h": 1, "4-24h": 2, ">24h": 2}
    assert durations([])["buckets"] == dict.fromkeys(("<5m", "5-15m", "15-60m", "1-4h", "4-24h", ">24h"), 0)
