"""Re-paging as supervisors see it (fake Slack Web API, real desk and worker): a breached clock on a
conversation nobody has taken is paged again every SLA_REPAGE_MINUTES, and stops once someone takes it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from bot.messages import utcnow
from bot.models import Conversation
from bot.sla_repage import repage_breaches
from bot.sla_watch import check_sla
from handoff.sla import SLAPolicy
from tests.bot.desk.slack_rig import AGENT, SUPERS, Rig

POLICY = SLAPolicy.from_spec(hours="24/7", targets="normal=4h/24h")


async def test_pages_repeat_in_the_supervisors_channel_until_someone_takes_it(rig_factory: Any) -> None:  # noqa: F811
    rig: Rig = await rig_factory()
    conv_id = await rig.customer("my parcel is late")
    async with rig.sm() as s, s.begin():
        await s.execute(update(Conversation).where(Conversation.id == conv_id)
                        .values(handed_off_at=utcnow() - timedelta(hours=5)))
    await check_sla(sessionmaker=rig.sm, desk=rig.desk, policy=POLICY)
    await rig.settle()
    t0, every = utcnow(), timedelta(minutes=30)

    async def sweep(minutes: int) -> int:
        await repage_breaches(sessionmaker=rig.sm, desk=rig.desk, policy=POLICY, every=every,
                              now=t0 + timedelta(minutes=minutes))
        await rig.settle()
        return len([p for p in rig.fake.roots(SUPERS) if "SLA breached" in (p.get("text") or "")])

    assert await sweep(10) == 1
    assert await sweep(31) == 2
    assert await sweep(45) == 2
    assert await sweep(62) == 3
    pages = [p["text"] for p in rig.fake.roots(SUPERS) if "SLA breached" in (p.get("text") or "")]
    assert all(f"#{conv_id}" in p and "first response" in p for p in pages)
    await rig.reply("On it.", conv_id=conv_id, user=AGENT)  # Ann takes it by answering
    assert (await rig.conv(conv_id)).assignee_id == AGENT
    assert await sweep(120) == 3
    assert await sweep(600) == 3
