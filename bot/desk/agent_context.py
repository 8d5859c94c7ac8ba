"""The context package in the agents' thread: whoever picks a conversation up gets what the
supervisors get (`bot.handoff_context.build_context`), plus the customer's profile and history across
every linked identity (outcome and CSAT of earlier conversations) and the SLA clocks.

    await owe_agent_context(session, conversation=conv, old=old, new=new)   # the desk's state hook
    text, blocks = await render_agent_context(session, conversation_id=conv.id, policy=sla_policy)
    package = await agent_context(session, conversation_id=conv.id, policy=sla_policy)  # the web console's

Owed (an outbox entry, kind ``slack.context`` on the ``slack_notice`` deliverer) when a
conversation reaches people from the bot: a handoff, an escalation, a person taking a bot
conversation, and so a reopened conversation going to people again. Rendered at delivery, so it
is current; posted in the conversation's thread (retried until the thread's root exists).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.csat_models import CsatSurvey
from bot.handoff_context import build_context
from bot.messages import utcnow
from bot.models import ChannelIdentity, Conversation, Customer
from bot.models import ConversationState as S
from bot.sla_watch import describe_clock
from channels import slack_blocks as kit
from channels.slack_customer import customer_actions
from handoff.sla import SLAPolicy, sla_for_conversation

KIND = "slack.context"
UNVERIFIED = " (linked on the customer's word, unverified)"  # bot.contact_link
HISTORY = 5


async def owe_agent_context(session: AsyncSession, *, conversation: Conversation, old: str, new: str) -> None:
    if old != S.BOT or new not in S.HUMAN:
        return
    # The thread's own order key: posted after the card and whatever the thread was owed before.
    await store.enqueue(session, channel="slack_notice", order_key=store.thread_order_key(conversation.id),
                        kind=KIND, conversation_id=conversation.id,
                        payload={"conversation_id": conversation.id})


async def customer_history(session: AsyncSession, *, conversation: Conversation) -> dict[str, Any]:
    """Profile extras and earlier conversations (any linked identity) with outcome and CSAT."""
    customer = await session.get(Customer, conversation.customer_id)
    identities = list((await session.execute(select(
        ChannelIdentity.channel, ChannelIdentity.opted_out, ChannelIdentity.meta).where(
        ChannelIdentity.customer_id == conversation.customer_id).order_by(ChannelIdentity.id))).all())
    earlier = list((await session.execute(select(Conversation).where(
        Conversation.customer_id == conversation.customer_id, Conversation.id != conversation.id)
        .order_by(Conversation.id.desc()).limit(HISTORY))).scalars())
    scores = {s.conversation_id: s.score for s in (await session.execute(select(CsatSurvey).where(
        CsatSurvey.conversation_id.in_([c.id for c in earlier] or [0])))).scalars()}
    return {
        "tags": list(customer.tags or []) if customer else [],
        "notes": customer.notes if customer else None,
        "channels": [f"{ch}{' (opted out)' if out else ''}{UNVERIFIED if (meta or {}).get('claimed') else ''}"
                     for ch, out, meta in identities],
        "earlier": [{"id": c.id, "channel": c.channel, "state": c.state, "created_at": c.created_at.isoformat(),
                     "outcome": _outcome(c), "csat": scores.get(c.id)} for c in earlier],
    }


def _outcome(c: Conversation) -> str:
    if c.state != S.RESOLVED:
        return f"open ({c.state})"
    if c.handoff_reason or c.assignee_id:
        return "resolved by a person" + (f" ({c.handoff_reason})" if c.handoff_reason else "")
    return "resolved by the bot"


def sla_lines(conv: Conversation, policy: SLAPolicy) -> list[str]:
    status = sla_for_conversation(conv, policy=policy, now=utcnow())
    if status is None:
        return []
    return [f"{kit.CLOCK_LABELS.get(c.name, c.name)}: {describe_clock(c)}"
            for c in (status.first_response, status.resolution)]


async def agent_context(session: AsyncSession, *, conversation_id: int, policy: SLAPolicy) -> dict[str, Any]:
    """The one package every desk renders (Slack here, the web console there): the supervisors'
    package (`handoff.context.build_context(...).to_dict()`) plus ``profile`` (channels, tags, notes,
    earlier conversations with outcome and CSAT) and ``sla`` (one line per clock)."""
    package = (await build_context(session, conversation_id=conversation_id)).to_dict()
    conv = await store.get_conversation(session, conversation_id=conversation_id)
    package["profile"] = await customer_history(session, conversation=conv)
    package["sla"] = sla_lines(conv, policy)
    return package


async def render_agent_context(session: AsyncSession, *, conversation_id: int,
                               policy: SLAPolicy) -> tuple[str, list[dict[str, Any]]]:
    package = await agent_context(session, conversation_id=conversation_id, policy=policy)
    history = package["profile"]
    _, blocks = kit.escalation_card(package, taken_by="-")
    blocks = [b for b in blocks if b.get("type") not in ("header", "actions", "context")]
    cust = package.get("customer") or {}
    who = cust.get("display_name") or cust.get("address") or "the customer"
    trigger = kit.escape(str(package.get("trigger") or "handed off"))
    text = f"Context for #{conversation_id}: {kit.escape(str(who))}, {trigger}"
    priority = kit.escape(str(package.get("priority")))
    head = [kit.section(f":card_index: *Context* \u00b7 #{conversation_id} \u00b7 {priority}")]
    profile = [f"*Channels:* {', '.join(history['channels']) or '-'}",
               f"*Tags:* {kit.escape(', '.join(history['tags'])) or '-'}"]
    if history["notes"]:
        profile.append(f"*Notes:* {kit.escape(kit.clip(str(history['notes']), 500))}")
    blocks.append(kit.section("\n".join(profile)))
    if history["earlier"]:
        lines = [f"\u2022 #{e['id']} {e['channel']} {e['created_at'][:10]}: {e['outcome']}"
                 + (f" \u00b7 CSAT {e['csat']}/5" if e["csat"] is not None else "") for e in history["earlier"]]
        blocks.append(kit.section("*Earlier conversations*\n" + "\n".join(lines)))
    sla = package["sla"]
    if sla:
        blocks.append(kit.context_block("SLA \u00b7 " + " \u00b7 ".join(sla)))
    blocks.append(customer_actions(conversation_id))  # VIP, tags, contact details, notes (bot.desk.customer_card)
    return text, head + blocks
