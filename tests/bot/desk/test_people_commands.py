"""`/switchboard available|away|release|customer` and the priority-ordered queue, through the real
bolt app, signed requests and the fake Slack Web API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update

from bot.models import Conversation
from bot.models import ConversationState as S
from bot.people_sweep import PeopleSweep
from bot.presence_models import AgentPresence
from tests.bot.desk.slack_rig import AGENT, AGENT2, SUPER, Rig


async def test_available_away_and_auto_assignment(rig_factory: Any) -> None:  # noqa: F811
    desk_rig: Rig = await rig_factory(auto_assign="round_robin", auto_assign_cap=1)
    rig = desk_rig  # noqa: F811
    first = await rig.customer("my parcel is late", who="c1")
    second = await rig.customer("my parcel is late", who="c2")
    assert "available" in await rig.command("available cap 1")
    assert "Usage" in await rig.command("available cap lots")
    assert "away" in await rig.command("away", user=AGENT2)
    sweep = PeopleSweep(settings=rig.settings, sessionmaker=rig.sm, agents=rig.agents)
    out = await sweep.run()
    await rig.settle()
    assert out["auto_assigned"] == [(first, AGENT)]  # Ann's cap is 1; Bo is away
    assert ((await rig.conv(first)).assignee_id, (await rig.conv(second)).state) == (AGENT, S.WAITING)
    async with rig.sm() as s:
        row = await s.get(AgentPresence, AGENT)
        assert row is not None and (row.status, row.cap) == ("available", 1) and row.name
    # Ann releases hers: it is back in the queue, and the next sweep gives her the longest waiting again.
    assert await rig.command("release") == f"#{first} is back in the queue."
    assert (await rig.conv(first)).state == S.WAITING
    assert "someone else" not in await rig.command(f"release {first}")  # nothing to release now
    assert (await sweep.run())["auto_assigned"] == [(first, AGENT)]


async def test_queue_lists_priority_first(rig: Rig) -> None:  # noqa: F811
    normal = await rig.customer("my parcel is late", who="n1")
    later = await rig.customer("my parcel is late", who="n2")
    async with rig.sm() as s, s.begin():
        await s.execute(update(Conversation).where(Conversation.id == later).values(priority="urgent"))
    lines = (await rig.command("queue")).splitlines()
    assert [line.split()[1] for line in lines] == [f"#{later}", f"#{normal}"]


async def test_customer_profile_from_slack(rig: Rig) -> None:  # noqa: F811
    conv_id = await rig.customer("my parcel is late", who="c9")
    shown = await rig.command(f"customer {conv_id}")
    assert "*Dana*" in shown and "Identities: web" in shown
    assert "VIP" in await rig.command(f"customer {conv_id} vip")
    assert "tags enterprise" in await rig.command(f"customer {conv_id} tag enterprise")
    thread = await rig.thread(conv_id)
    header = [u for u in rig.fake.called("chat.update") if u["ts"] == thread.card_ts][-1]
    assert "enterprise, vip" in str(header["blocks"])  # the thread's header follows the profile
    assert "Not changed:" in await rig.command(f"customer {conv_id} email not-an-email")
    assert "Email ann@example.com" in await rig.command(f"customer {conv_id} email ann@example.com")
    assert "There is no conversation #999" in await rig.command("customer 999")
    assert "did not understand" in await rig.command(f"customer {conv_id} dance")
    assert "`release [id]`" in await rig.command("help")
    report = await rig.command("report 30")
    assert "Conversations 1 (web 1)" in report and "Handoff reasons: low_confidence 1" in report
    assert "Usage" in await rig.command("report forever")
    assert "Which conversation?" in await rig.command("release", user=SUPER)

