"""Conversation moves, inside a transaction the caller holds: which conversation a customer's
message belongs to, handing it to people, moving its state, and saying something to the customer.

    conversations = Conversations(settings=settings, desk=desk)
    conv = await conversations.conversation_for(session, identity=identity)   # open, reopened or new
    await conversations.hand_off(session, conv, decision)                     # to agents or supervisors
    await conversations.say(session, conv, "Hello", author_kind="system")     # message + outbox entry

Used by the bot turn (`bot.engine.Pipeline`) and by the agent actions (`bot.agents.Agents`). Each
method that writes takes the caller's session and writes in its transaction, so a state change and
the message it owes commit together, and the desk's hooks run in the same transaction; `move` only
changes the conversation row the caller already holds.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.desk.base import Desk
from bot.messages import RecipientOptedOut, utcnow
from bot.models import ChannelIdentity, Conversation, Message, OutboxEntry
from bot.models import ConversationState as S
from bot.settings import Settings
from bot.sms_outbox import enqueue_reply
from bot.states import check_move
from handoff.policy import Decision

log = logging.getLogger("switchboard.conversations")


def decision_dict(decision: Decision) -> dict[str, Any]:
    """A handoff decision as stored in events and message meta."""
    return {"trigger": decision.trigger, "evidence": decision.evidence, "target": decision.target,
            "priority": decision.priority}


class Conversations:
    def __init__(self, *, settings: Settings, desk: Desk) -> None:
        self.settings = settings
        self.desk = desk

    async def conversation_for(self, session: AsyncSession, *, identity: ChannelIdentity) -> Conversation:
        """The identity's open conversation; else its latest, reopened within the reopen window; else a new one."""
        conv = await store.open_conversation(session, identity_id=identity.id)
        if conv is not None:
            return conv
        latest = await store.latest_conversation(session, identity_id=identity.id)
        if (latest is not None and latest.resolved_at
                and utcnow() - latest.resolved_at < timedelta(hours=self.settings.reopen_window_hours)):
            self.move(latest, S.BOT, reason="customer wrote again")
            latest.handoff_notified = False
            latest.takeover_notified = False
            latest.low_confidence_streak = 0
            # A reopened conversation starts its clocks again (SLA, reports).
            latest.handed_off_at = None
            latest.first_human_response_at = None
            latest.resolved_at = None
            latest.assignee_id = latest.assignee_name = latest.assignee_role = None
            await store.log_event(session, kind="reopened", conversation_id=latest.id)
            return latest
        conv = Conversation(customer_id=identity.customer_id, identity_id=identity.id, channel=identity.channel)
        session.add(conv)
        await session.flush()
        await store.log_event(session, kind="created", conversation_id=conv.id, data={"channel": conv.channel})
        return conv

    def move(self, conv: Conversation, new: str, *, reason: str | None) -> None:
        """Change the state (`bot.states` refuses a move the state machine does not have). Writes no
        event of its own: each caller logs the event its move means (handed_off, assigned, ...)."""
        check_move(conv.state, new)
        log.debug("conversation %s: %s -> %s (%s)", conv.id, conv.state, new, reason)
        conv.state = new
        conv.updated_at = utcnow()

    async def hand_off(self, session: AsyncSession, conv: Conversation, decision: Decision) -> None:
        """To the agents (waiting) or, for a supervisor decision, the supervisors (escalated)."""
        new = S.ESCALATED if decision.target == "supervisor" else S.WAITING
        if conv.state == new:
            return
        old = conv.state
        self.move(conv, new, reason=decision.trigger)
        conv.handoff_reason = decision.trigger
        conv.priority = decision.priority
        conv.handed_off_at = conv.handed_off_at or utcnow()
        kind = "escalated" if new == S.ESCALATED else "handed_off"
        await store.log_event(session, kind=kind, conversation_id=conv.id, data=decision_dict(decision))
        if old == S.BOT and not conv.handoff_notified:
            conv.handoff_notified = True
            await self.say(session, conv, self.settings.handoff_message, author_kind="system",
                           meta={"handoff_notice": True})  # the widget offers its contact form here
        await self.desk.on_state_change(session, conversation=conv, old=old, new=new, reason=decision.trigger)

    async def say(
        self,
        session: AsyncSession,
        conv: Conversation,
        text: str,
        *,
        author_kind: str,
        author_id: str | None = None,
        author_name: str | None = None,
        source_id: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Message:
        """Store an outbound message and owe its delivery (same transaction); an opted-out address
        gets the message stored as "suppressed" and nothing sent."""
        identity = await session.get(ChannelIdentity, conv.identity_id)
        assert identity is not None
        msg = await store.add_message(
            session,
            conversation_id=conv.id,
            channel=conv.channel,
            direction="out",
            author_kind=author_kind,
            author_id=author_id,
            author_name=author_name,
            text=text,
            source_id=source_id,
            delivery_status="suppressed" if identity.opted_out else "queued",
            meta=meta or {},
        )
        if not identity.opted_out:
            await enqueue_reply(  # ops hook: one entry per SMS part (bot.sms_outbox)
                session,
                channel=conv.channel,
                order_key=store.customer_order_key(conv.channel, identity.address),
                conversation_id=conv.id,
                message_id=msg.id,
                payload={"to": identity.address, "text": text, "author_kind": author_kind,
                         "author_name": author_name, "meta": meta or {}},
                sms_max_segments=self.settings.sms_max_segments,
            )
        await self.desk.on_outbound(session, conversation=conv, message=msg)
        return msg

    async def delivery_failed(self, session: AsyncSession, entry: OutboxEntry, exc: Exception) -> None:
        """The worker dead-lettered an entry (`Worker(on_failure=...)`): record an opt-out and tell
        the agents, in the worker's transaction."""
        if entry.conversation_id is None:
            return
        conv = await store.get_conversation(session, conversation_id=entry.conversation_id)
        if isinstance(exc, RecipientOptedOut) and "to" in (entry.payload or {}):
            await store.set_opted_out(session, channel=entry.channel, address=entry.payload["to"])
            await store.log_event(session, kind="opted_out", conversation_id=conv.id,
                                  data={"channel": entry.channel, "via": "delivery error"})
        if entry.message_id is not None and entry.kind == "message":
            msg = await session.get(Message, entry.message_id)
            if msg is not None:
                await self.desk.on_delivery_problem(session, conversation=conv, message=msg)
