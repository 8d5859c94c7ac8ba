"""A low web chat rating reaches the supervisors' Slack channel (fake Slack Web API) with the thread link."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.messages import utcnow
from bot.people_sweep import PeopleSweep
from channels import slack_blocks as kit
from tests.bot.desk.slack_rig import SUPERS, Rig
from tests.bot.helpers import texts


async def test_low_web_chat_rating_posts_to_supervisors(rig_factory: Any) -> None:  # noqa: F811
    rig: Rig = await rig_factory(csat_quiet_hours="")
    conv_id = await rig.customer("my parcel is late")
    await rig.reply("Sorry, it is on its way.", conv_id=conv_id)
    await rig.click(kit.A_RESOLVE, str(conv_id), conv_id=conv_id)
    sweep = PeopleSweep(settings=rig.settings, sessionmaker=rig.sm, agents=rig.agents)
    await sweep.run(now=utcnow() + timedelta(minutes=6))
    await rig.settle()
    assert texts(rig.web)[-1] == rig.settings.csat_question  # on the customer's own channel
    await rig.customer("2 took too long")
    await rig.settle()
    assert texts(rig.web)[-1] == rig.settings.csat_thanks
    [notice] = [p for p in rig.fake.roots(SUPERS) if "CSAT" in (p.get("text") or "")]
    thread = await rig.thread(conv_id)
    assert f"CSAT 2/5 on conversation #{conv_id}" in notice["text"] and "took too long" in notice["text"]
    assert f"archives/{thread.channel_id}/p{(thread.thread_ts or '').replace('.', '')}" in notice["text"]
