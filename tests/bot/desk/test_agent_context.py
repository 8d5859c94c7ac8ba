"""Context everywhere: on handoff the agents' thread (fake Slack Web API) gets the context package:
why, a summary, what the bot tried, the customer with every channel, tags and earlier
conversations with their outcome and CSAT, and the SLA clocks."""

from __future__ import annotations

from typing import Any

from bot import customers_admin as admin
from bot.csat_models import CsatSurvey
from bot.desk.agent_context import agent_context
from bot.models import Conversation
from channels import slack_blocks as kit
from handoff.sla import SLAPolicy
from tests.bot.desk.slack_rig import AGENTS, Rig


def context_posts(rig: Rig, thread_ts: str) -> list[dict[str, Any]]:
    return [p for p in rig.fake.thread(AGENTS, thread_ts) if (p.get("text") or "").startswith("Context for #")]


async def test_handoff_posts_the_context_package_in_the_agents_thread(rig_factory: Any) -> None:  # noqa: F811
    rig: Rig = await rig_factory(reopen_window_hours=0, csat_enabled=False)
    first = await rig.customer("my parcel is late", who="ctx")
    await rig.reply("It is on its way.", conv_id=first)
    await rig.click(kit.A_RESOLVE, str(first), conv_id=first)
    async with rig.sm() as s, s.begin():
        conv = await s.get(Conversation, first)
        assert conv is not None
        s.add(CsatSurvey(conversation_id=first, identity_id=conv.identity_id, channel="web", status="answered",
                         score=4))
        await admin.tag(s, customer_id=conv.customer_id, add=["enterprise"])
        await admin.link_identity(s, customer_id=conv.customer_id, channel="sms", address="+14155550123")
    [ctx_first] = context_posts(rig, (await rig.thread(first)).thread_ts or "")

    second = await rig.customer("my parcel is late again, where is it?", who="ctx")
    assert second != first
    [ctx] = context_posts(rig, (await rig.thread(second)).thread_ts or "")
    body = str(ctx["blocks"])
    assert f"Context for #{second}" in ctx["text"] and "low_confidence" in ctx["text"]
    assert "*Summary*" in body and "where is it" in body
    assert "*What the bot tried*" in body and "Shipping 45%" in body
    assert "*Channels:* web, sms" in body and "*Tags:* enterprise" in body
    assert f"#{first} web" in body and "resolved by a person (low_confidence)" in body and "CSAT 4/5" in body
    assert "first response: due in" in body and "resolution: due in" in body
    assert "Earlier conversations" not in str(ctx_first["blocks"])  # the first time, there were none
    # The same package as data, for the web console: one builder, one shape.
    async with rig.sm() as s:
        package = await agent_context(s, conversation_id=second, policy=SLAPolicy.from_settings(rig.settings))
    assert package["trigger"] == "low_confidence" and package["summary"] and package["bot_attempts"]
    assert package["profile"]["tags"] == ["enterprise"] and package["profile"]["channels"] == ["web", "sms"]
    assert [(e["id"], e["csat"]) for e in package["profile"]["earlier"]] == [(first, 4)]
    assert [line.split(":")[0] for line in package["sla"]] == ["first response", "resolution"]
    # In the thread's order: the customer's message first, then the context, then "Handed to agents".
    order = [p["ts"] for p in rig.fake.thread(AGENTS, (await rig.thread(second)).thread_ts or "")]
    texts_in_order = [p.get("text") or "" for p in rig.fake.thread(AGENTS, (await rig.thread(second)).thread_ts or "")]
    handed = next(i for i, t in enumerate(texts_in_order) if t.startswith("Handed to agents"))
    assert 0 < order.index(ctx["ts"]) < handed


async def test_the_thread_header_follows_state_owner_and_clocks(rig_factory: Any) -> None:  # noqa: F811
    """The root card is re-rendered (chat.update) when the state, the owner or a clock changes:
    handed off (first response and resolution due), assigned (owner), first reply (the first-response
    clock stops), resolved (no clocks, no buttons)."""
    from tests.bot.desk.slack_rig import AGENT
    rig: Rig = await rig_factory(reopen_window_hours=0, csat_enabled=False)
    conv_id = await rig.customer("my parcel is late", who="hdr")
    thread = await rig.thread(conv_id)

    def header() -> str:
        updates = [u for u in rig.fake.called("chat.update") if u["ts"] == thread.card_ts]
        root = next(p for p in rig.fake.posts(AGENTS) if p["ts"] == thread.card_ts)
        return str((updates[-1] if updates else root)["blocks"])

    first = header()
    assert "waiting" in first and "nobody yet" in first
    assert "First response due" in first and "Resolution due" in first
    await rig.agents.assign(conv_id, user_id=AGENT, user_name="Ann")  # as auto-assignment does
    await rig.settle()
    taken = header()
    assert f"<@{AGENT}>" in taken and "assigned" in taken and "First response due" in taken
    await rig.reply("It is on its way.", conv_id=conv_id)
    replied = header()
    assert "First response due" not in replied and "Resolution due" in replied
    await rig.click(kit.A_RESOLVE, str(conv_id), conv_id=conv_id)
    done = header()
    assert "resolved" in done and "due" not in done and kit.A_RESOLVE not in done


async def test_a_reopened_handed_off_conversation_brings_the_context_again(rig_factory: Any) -> None:  # noqa: F811
    """Resolved by a person, the customer writes again inside REOPEN_WINDOW_HOURS: the same thread gets
    a fresh context package when the conversation goes back to people (the earlier turns included)."""
    from tests.bot.desk.slack_rig import AGENT
    rig: Rig = await rig_factory(reopen_window_hours=24, csat_enabled=False)
    conv_id = await rig.customer("my parcel is late", who="again")
    await rig.reply("It is on its way.", conv_id=conv_id, user=AGENT)
    await rig.click(kit.A_RESOLVE, str(conv_id), conv_id=conv_id)
    thread = await rig.thread(conv_id)
    assert len(context_posts(rig, thread.thread_ts or "")) == 1
    assert await rig.customer("my parcel is still late, where is it?", who="again") == conv_id  # reopened
    conv = await rig.conv(conv_id)
    assert conv.state == "waiting"
    posts = context_posts(rig, thread.thread_ts or "")
    assert len(posts) == 2
    body = str(posts[-1]["blocks"])
    assert "still late" in body and "It is on its way." in body  # the new turn and the earlier reply
    assert "first response: due in" in body  # the clocks of the new handoff
