"""VIP and tag routes fire end to end: a profile set with `switchboard customers`, then the customer's
message reaches the routed Slack channel (fake Slack Web API, real desk, pipeline and worker)."""

from __future__ import annotations

import asyncio
from typing import Any

from typer.testing import CliRunner

from bot.cli import app
from bot.models import ChannelIdentity, Customer
from bot.models import ConversationState as S
from tests.bot.desk.slack_rig import AGENTS, VIPS, Rig

ENTERPRISE = "C0ENTERPRISE"


async def profile(rig: Rig, address: str, monkeypatch: Any, tmp_path: Any, *args: str) -> int:
    """A known customer (web chat address), then `switchboard customers ...` on the rig's database."""
    async with rig.sm() as s, s.begin():
        c = Customer(display_name="Dana")
        s.add(c)
        await s.flush()
        s.add(ChannelIdentity(customer_id=c.id, channel="web", address=address))
        cid = c.id
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'slack.db'}")
    for command in args:
        out = await asyncio.to_thread(CliRunner().invoke, app, ["customers", *command.format(id=cid).split()])
        assert out.exit_code == 0, out.output
    return cid


async def test_vip_customer_message_routes_to_the_vip_route(rig_factory: Any, monkeypatch: Any,  # noqa: F811
                                                            tmp_path: Any) -> None:
    rig: Rig = await rig_factory(slack_routes=f"tag:vip={VIPS}")
    await profile(rig, "sess-vip", monkeypatch, tmp_path, "set {id} --vip")
    conv_id = await rig.customer("what are your opening hours?", who="sess-vip")  # the bot could answer this
    conv = await rig.conv(conv_id)
    assert (conv.state, conv.handoff_reason, conv.priority) == (S.WAITING, "vip", "high")
    thread = await rig.thread(conv_id)
    assert thread.channel_id == VIPS
    assert [r["ts"] for r in rig.fake.roots(VIPS)] == [thread.thread_ts]
    assert rig.fake.roots(AGENTS) == []
    # An ordinary customer asking the same goes nowhere near people.
    other = await rig.customer("what are your opening hours?", who="sess-plain")
    assert (await rig.conv(other)).state == S.BOT


async def test_customer_tag_routes_to_its_channel(rig_factory: Any, monkeypatch: Any, tmp_path: Any) -> None:  # noqa: F811
    rig: Rig = await rig_factory(slack_routes=f"tag:vip={VIPS},tag:enterprise={ENTERPRISE}",
                                 handoff_triggers="all,-vip")
    await profile(rig, "sess-ent", monkeypatch, tmp_path, "tag {id} enterprise")
    conv_id = await rig.customer("my parcel is late", who="sess-ent")  # low confidence: handed off
    assert (await rig.conv(conv_id)).state == S.WAITING
    assert (await rig.thread(conv_id)).channel_id == ENTERPRISE
    assert len(rig.fake.roots(ENTERPRISE)) == 1
