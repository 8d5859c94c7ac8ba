"""Pipeline events -> Slack posts: the `bot.desk.base.Desk` hooks for a Slack workspace.

    desk = SlackDesk(settings=settings)
    conversations = Conversations(settings=settings, desk=desk)   # every conversation move tells it

Every Slack post is an outbox entry (channel "slack", order key ``slack:conv:<id>``) written in
the transaction of the move that owes it, so the root card is posted before its thread posts and
nothing is lost or sent twice (`bot.desk.slack_deliver` sends them). The pipeline reports a
customer's message before whatever the bot says in reply, so posts are queued in the order they
appear in the thread. Clicks and replies coming back are `bot.desk.slack_actions`; the wiring is in
`bot.app` (docs/slack.md).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.desk.agent_context import owe_agent_context
from bot.desk.routing_tags import route_tags
from bot.desk.slack_deliver import masked
from bot.models import ChannelIdentity, Conversation, Customer, Message, OutboxEntry
from bot.models import ConversationState as S
from bot.settings import Settings
from bot.sla_watch import human_duration
from bot.slack_models import SlackSuggestion, SlackThread
from channels import slack_blocks as kit
from handoff.policy import Decision
from kb_index.types import Hit, KbRecord

log = logging.getLogger("switchboard.slack")

STATE_NOTICES = {
    S.WAITING: "Handed to agents ({reason}). Reply in this thread or press Send.",
    S.ESCALATED: "Escalated to supervisors ({reason}).",
    S.ASSIGNED: "Assigned to {assignee}.",
    S.RESOLVED: "Resolved by {by}. The bot answers again.",
    S.BOT: "Back with the bot ({reason}).",
}

COMPLIANCE_NOTICES = {
    "stop": ":no_entry: The customer texted an opt-out keyword: this number is opted out and will receive nothing "
            "more until they text START.",
    "start": ":white_check_mark: The customer opted back in (START): replies are delivered again.",
    "help": ":information_source: The customer texted HELP and was sent the help text.",
}


def parse_routes(rules: str) -> list[tuple[str, str]]:
    """'sms=C1,tag:vip=C2' -> [("sms", "C1"), ("tag:vip", "C2")] (first match wins)."""
    out = []
    for rule in rules.split(","):
        key, sep, channel = rule.strip().partition("=")
        if sep and key.strip() and channel.strip():
            out.append((key.strip().lower(), channel.strip()))
    return out


class SlackDesk:
    """Implements `bot.desk.base.Desk`: hooks inside the transaction of each conversation move."""

    def __init__(self, *, settings: Settings) -> None:
        self.settings = settings
        self.routes = parse_routes(settings.slack_routes)
        self.supervisor_ids = {u.strip() for u in settings.slack_supervisor_ids.split(",") if u.strip()}
        self.desk_channels = frozenset(c for c in (settings.slack_agents_channel, settings.slack_supervisors_channel,
                                                   *(ch for _, ch in self.routes)) if c)

    # ---- routing and per-transaction bookkeeping ---------------------------------------------------

    def route(self, *, conversation: Conversation, customer: Customer | None) -> str | None:
        tags = route_tags(conversation, customer)  # its own, the customer's, vip / flagged
        for key, channel in self.routes:
            if key.startswith("tag:") and key[4:] in tags or key == conversation.channel.lower():
                return channel
        return self.settings.slack_agents_channel

    @staticmethod
    def _txn(session: AsyncSession, conversation_id: int) -> dict[str, Any]:
        """This transaction's Slack entries for one conversation (session.info is per session)."""
        marker = session.sync_session.get_transaction()
        book = session.info.get("slack_posts")
        if book is None or book["txn"] is not marker:
            book = session.info["slack_posts"] = {"txn": marker, "convs": {}}
        convs: dict[int, dict[str, Any]] = book["convs"]
        return convs.setdefault(conversation_id, {"entries": [], "deferred": []})

    async def _thread(self, session: AsyncSession, conversation_id: int) -> SlackThread | None:
        stmt = select(SlackThread).where(SlackThread.conversation_id == conversation_id)
        return (await session.execute(stmt)).scalar_one_or_none()

    async def _enqueue(self, session: AsyncSession, conv: Conversation, kind: str, payload: dict[str, Any],
                       *, track: bool = True) -> OutboxEntry:
        entry = await store.enqueue(session, channel="slack", order_key=store.thread_order_key(conv.id),
                                    kind=kind, payload=payload, conversation_id=conv.id)
        if track:
            self._txn(session, conv.id)["entries"].append(entry)
        return entry

    async def _open_thread(self, session: AsyncSession, conv: Conversation) -> SlackThread | None:
        thread = await self._thread(session, conv.id)
        if thread is not None:
            return thread
        customer = await session.get(Customer, conv.customer_id)
        channel = self.route(conversation=conv, customer=customer)
        if not channel:
            log.warning("no Slack channel for conversation %s: set SLACK_AGENTS_CHANNEL", conv.id)
            return None
        thread = SlackThread(conversation_id=conv.id, channel_id=channel)
        session.add(thread)
        await session.flush()
        await self._enqueue(session, conv, "slack.card", {"conversation_id": conv.id}, track=False)
        book = self._txn(session, conv.id)
        book["card_now"] = True
        for kind, payload in book.pop("deferred"):
            await self._enqueue(session, conv, kind, payload)
        book["deferred"] = []
        return thread

    async def _refresh_card(self, session: AsyncSession, conv: Conversation) -> None:
        """Re-render the thread's root card (state, owner, clocks) once per transaction, after commit."""
        book = self._txn(session, conv.id)
        if not book.get("card_now") and not book.get("card_update"):
            book["card_update"] = True
            await self._enqueue(session, conv, "slack.update", {"conversation_id": conv.id})

    async def _post(self, session: AsyncSession, conv: Conversation, text: str, blocks: list[dict[str, Any]],
                    *, target: str = "conv") -> None:
        payload = {"text": text, "blocks": blocks, "target": target}
        if await self._thread(session, conv.id) is None:
            self._txn(session, conv.id)["deferred"].append(("slack.post", payload))  # posted if a thread opens
            return
        await self._enqueue(session, conv, "slack.post", payload)

    # ---- Desk hooks (inside the pipeline's transaction) ----------------------------------------------

    async def on_customer_message(self, session: AsyncSession, *, conversation: Conversation, message: Message,
                                  hits: Sequence[Hit], decision: Decision | None) -> None:
        conv = conversation
        kb = KbRecord.from_meta(message.meta, text=message.text)
        answered = bool(kb and kb.answered)
        thread = await self._thread(session, conv.id)
        if thread is None and answered and decision is None and conv.state == S.BOT:
            return  # the bot closed this turn on its own: no thread needed (yet)
        if thread is None and await self._open_thread(session, conv) is None:
            return
        shown = [h for h in hits if h.confidence >= self.settings.suggest_threshold][: self.settings.slack_suggestions]
        views = []
        for rank, hit in enumerate(shown, start=1):
            row = SlackSuggestion(conversation_id=conv.id, message_id=message.id, rank=rank,
                                  article_id=hit.article_id, title=hit.title[:500], text=hit.answer,
                                  confidence=float(hit.confidence), url=hit.url)
            session.add(row)
            await session.flush()
            views.append(kit.SuggestionView(ref=str(row.id), article_id=hit.article_id, title=hit.title,
                                            preview=hit.snippet or hit.answer, confidence=hit.confidence,
                                            url=hit.url))
        identity = await session.get(ChannelIdentity, conv.identity_id)
        customer = await session.get(Customer, conv.customer_id)
        author = message.author_name or (customer.display_name if customer else None) or masked(identity)
        text, blocks = kit.customer_post(kit.CustomerPost(
            conversation_id=conv.id, author=author, text=message.text, suggestions=views,
            answered_by_bot=answered, decision=(message.meta or {}).get("decision"),
            attachments=(message.meta or {}).get("attachments") or (), read_with=kb.context_turn if kb else None,
        ))
        await self._enqueue(session, conv, "slack.post", {"text": text, "blocks": blocks, "target": "conv"})
        compliance = (message.meta or {}).get("compliance")
        if compliance in COMPLIANCE_NOTICES:
            await self._enqueue(session, conv, "slack.post", {"text": COMPLIANCE_NOTICES[compliance], "target": "conv"})
        thread = await self._thread(session, conv.id)
        fresh_card = self._txn(session, conv.id).get("esc_now")  # a card built now shows this message already
        if thread is not None and thread.esc_outbox_id is not None and not fresh_card and (
                conv.state == S.ESCALATED or conv.assignee_role == "supervisor"):
            await self._enqueue(session, conv, "slack.post", {"text": text, "blocks": blocks[:1], "target": "esc"})

    async def on_outbound(self, session: AsyncSession, *, conversation: Conversation, message: Message) -> None:
        meta = message.meta or {}
        if (message.author_kind in ("agent", "supervisor") and conversation.first_human_response_at is None
                and await self._thread(session, conversation.id) is not None):
            await self._refresh_card(session, conversation)  # the first-response clock stops with this reply
        if meta.get("via") != "slack_thread":  # a thread reply is already in the thread
            who = {"bot": "Bot", "system": "Told the customer"}.get(message.author_kind)
            if who is None:
                who = f"{message.author_name or message.author_id or message.author_kind} sent"
            text, blocks = kit.notice(message.author_kind, message.text, who=who)
            await self._post(session, conversation, text, blocks)
        if message.delivery_status == "suppressed":
            text, blocks = kit.notice("problem", f"Not sent: the customer opted out of {conversation.channel} "
                                                 "messages (STOP). They must opt back in (START) first.")
            await self._post(session, conversation, text, blocks)

    async def on_state_change(self, session: AsyncSession, *, conversation: Conversation, old: str, new: str,
                              reason: str | None) -> None:
        conv = conversation
        thread = await self._thread(session, conv.id)
        if thread is None and new in S.HUMAN:
            thread = await self._open_thread(session, conv)
        if thread is None:
            return
        await owe_agent_context(session, conversation=conv, old=old, new=new)  # bot.desk.agent_context
        book = self._txn(session, conv.id)
        await self._refresh_card(session, conv)
        assignee = f"<@{conv.assignee_id}>" if conv.assignee_id else "nobody"
        by = f"<@{reason}>" if reason and re.fullmatch(r"[UW][A-Z0-9]{2,}", reason) else (reason or "someone")
        line = STATE_NOTICES.get(new, "{new}").format(reason=reason or "-", assignee=assignee, by=by, new=new)
        if new == S.ASSIGNED and conv.assignee_role == "supervisor":
            line = f"Taken by supervisor {assignee}."
        await self._post(session, conv, line, [kit.section(f":arrows_counterclockwise: {line}")])
        if new == S.ESCALATED and self.settings.slack_supervisors_channel:
            entry = await self._enqueue(session, conv, "slack.escalation", {"conversation_id": conv.id})
            thread.esc_outbox_id = entry.id
            book["esc_now"] = True
            thread.esc_channel_id = self.settings.slack_supervisors_channel
            thread.esc_ts = None
        elif thread.esc_outbox_id is not None:
            await self._enqueue(session, conv, "slack.esc_update", {"conversation_id": conv.id})

    async def on_delivery_problem(self, session: AsyncSession, *, conversation: Conversation,
                                  message: Message) -> None:
        if await self._thread(session, conversation.id) is None:
            await self._open_thread(session, conversation)
        status = message.delivery_status or "failed"
        code = f", error {message.error_code}" if message.error_code else ""
        text, blocks = kit.notice("problem", f"Not delivered to the customer ({status}{code}): "
                                             f"\u201c{kit.clip(message.text, 300)}\u201d")
        await self._post(session, conversation, text, blocks)

    # ---- SLA pages (bot.sla_watch calls these inside its transaction) -------------------------------------

    def supervisor_mentions(self) -> list[str]:
        """The user group (``<!subteam^ID>``) and each supervisor id (``<@U..>``): who a page notifies."""
        out = [f"<!subteam^{self.settings.slack_supervisor_group}>"] if self.settings.slack_supervisor_group else []
        return out + [f"<@{u}>" for u in sorted(self.supervisor_ids)]

    async def on_sla_breach(self, session: AsyncSession, *, conversation: Conversation, clock_name: str,
                            due_at: datetime, overdue_seconds: float) -> None:
        """Page the supervisors' channel (or, without one, the conversation's thread), once per clock."""
        conv = conversation
        channel = self.settings.slack_supervisors_channel
        thread = await self._thread(session, conv.id) or await self._open_thread(session, conv)
        if channel is None and thread is None:
            log.warning("SLA breach on conversation %s: no Slack channel to page (set SLACK_SUPERVISORS_CHANNEL)",
                        conv.id)
            return
        await self._enqueue(session, conv, "slack.page", {
            "conversation_id": conv.id, "clock": clock_name, "due_at": due_at.isoformat(),
            "overdue_seconds": round(overdue_seconds, 1), "mentions": self.supervisor_mentions(), "channel": channel,
        })
        if thread is None:
            return
        await self._refresh_card(session, conv)  # the card shows the breach
        if channel:
            label = kit.CLOCK_LABELS.get(clock_name, clock_name)
            line = f"SLA breached: {label} is {human_duration(overdue_seconds)} overdue. Supervisors were paged."
            await self._post(session, conv, line, [kit.section(f":rotating_light: {line}")])

    async def on_sla_warning(self, session: AsyncSession, *, conversation: Conversation, clock_name: str,
                             due_at: datetime, remaining_seconds: float) -> None:
        """Warn the conversation's thread (and its assignee) before a clock runs out."""
        label = kit.CLOCK_LABELS.get(clock_name, clock_name)
        who = f"<@{conversation.assignee_id}> " if conversation.assignee_id else ""
        line = f"SLA: {label} due in {human_duration(remaining_seconds)}"
        due = kit.slack_date(due_at.timestamp(), f"{due_at:%Y-%m-%d %H:%M} UTC")
        await self._post(session, conversation, line, [kit.section(f":hourglass: {who}*{line}* ({due})")])

    # ---- posts the agent actions ask for (bot.desk.slack_actions, people_commands, the console) --------

    async def post_note(self, session: AsyncSession, conv: Conversation, *, text: str, user_id: str | None = None,
                        name: str | None = None) -> None:
        """Show an internal note in the conversation's thread (a Slack user by mention, else by name:
        the web console's notes)."""
        who = f"<@{user_id}>" if user_id else kit.escape(name or "someone")
        blocks = [kit.section(f":lock: *Internal note by {who}* (not sent to the customer)\n{kit.quote(text)}")]
        await self._post(session, conv, f"Internal note: {kit.escape(kit.clip(text, 150))}", blocks)

    async def profile_changed(self, session: AsyncSession, conv: Conversation, *, line: str | None = None) -> None:
        """The customer's profile changed: say `line` in the thread, and re-render the card's header
        (VIP, tags) when the thread exists."""
        if line is not None:
            await self._post(session, conv, line, [kit.section(f":bust_in_silhouette: {line}")])
        if await self._thread(session, conv.id) is not None:
            await self._refresh_card(session, conv)


__all__ = ["SlackDesk", "parse_routes"]
