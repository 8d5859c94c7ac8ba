"""The agents' desk on Slack: the pipeline's `Desk`, the Slack listeners' `AgentHost`, and the
outbox deliverer for channel "slack" (`bot.slack_deliver`, re-exported here).

Wiring (see docs/slack.md)::

    desk = SlackDesk(settings=settings, sessionmaker=sm, policy=policy, kb=kb, learn=kb.learn)
    pipeline = Pipeline(..., desk=desk)
    desk.attach(pipeline, wake=worker.wake)
    channel = SlackChannel(settings, host=desk)
    app.include_router(channel.router())
    deliverers["slack"] = SlackDeliverer(sessionmaker=sm, api=channel.api, settings=settings)

Every Slack post is an outbox entry (channel "slack", order key ``slack:conv:<id>``) written in
the pipeline's transaction, so the root card is posted before its thread posts and nothing is
lost or sent twice. The pipeline reports a customer's message before whatever the bot says in
reply, so posts are queued in the order they appear in the thread.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.agent_context import owe_agent_context
from bot.customer_card import customer_form, save_customer_form
from bot.messages import utcnow
from bot.models import ChannelIdentity, Conversation, Customer, Message, OutboxEntry
from bot.models import ConversationState as S
from bot.people_commands import people_command
from bot.routing_tags import route_tags
from bot.settings import Settings
from bot.slack_deliver import SlackDeliverer, _masked, counts
from bot.slack_models import SlackSuggestion, SlackThread
from channels import slack_blocks as kit
from channels.base import SendError
from channels.slack import Draft, Notice, SlackUser
from channels.slack_commands import HELP, parse_command
from channels.slack_customer import CustomerForm
from channels.slack_format import thread_link
from handoff import permissions
from handoff.permissions import Action, Actor, NotAllowed
from handoff.queue import priority_rank_sql
from kb_index.types import Hit, Searcher

if TYPE_CHECKING:
    from bot.engine import Pipeline
    from handoff.policy import Decision, Policy

log = logging.getLogger("switchboard.slack")

Learn = Callable[..., Any]  # KnowledgeBase.learn(article_id=, question=, negative=), sync or async
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
    """Implements `bot.desk.Desk` (hooks inside the pipeline's transactions) and `AgentHost`."""

    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        policy: Policy | None = None,
        kb: Searcher | None = None,
        learn: Learn | None = None,
        api: Any = None,
        pipeline: Pipeline | None = None,
        wake: Callable[[], None] | None = None,
        persist_learning: bool = True,
    ) -> None:
        self.settings = settings
        self.persist_learning = persist_learning  # kb_index.store.add_phrasing, re-applied by every rebuild
        self.sessionmaker = sessionmaker
        self.policy = policy
        self.kb = kb
        self.learn = learn
        self.api = api  # channels.slack_api.SlackApi: only for the supervisor group look-up
        self.pipeline = pipeline
        self._wake = wake or (lambda: None)
        self.routes = parse_routes(settings.slack_routes)
        self.supervisor_ids = {u.strip() for u in settings.slack_supervisor_ids.split(",") if u.strip()}
        self.agent_ids = frozenset(u.strip() for u in settings.slack_agent_ids.split(",") if u.strip())
        self.desk_channels = frozenset(c for c in (settings.slack_agents_channel, settings.slack_supervisors_channel,
                                                   *(ch for _, ch in self.routes)) if c)
        self._group: tuple[float, set[str]] = (0.0, set())

    def attach(self, pipeline: Pipeline, *, wake: Callable[[], None] | None = None, api: Any = None) -> None:
        self.pipeline = pipeline
        if wake is not None:
            self._wake = wake
        if api is not None:
            self.api = api

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
        book = session.info.get("slack_desk")
        if book is None or book["txn"] is not marker:
            book = session.info["slack_desk"] = {"txn": marker, "convs": {}}
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
        kb_meta = (message.meta or {}).get("kb") or {}
        answered = bool(kb_meta.get("answered"))
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
        author = message.author_name or (customer.display_name if customer else None) or _masked(identity)
        text, blocks = kit.customer_post(kit.CustomerPost(
            conversation_id=conv.id, author=author, text=message.text, suggestions=views,
            answered_by_bot=answered, decision=(message.meta or {}).get("decision"),
            attachments=(message.meta or {}).get("attachments") or (), read_with=kb_meta.get("context_turn"),
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
        await owe_agent_context(session, conversation=conv, old=old, new=new)  # bot.agent_context
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
        from bot.sla_watch import human_duration

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
        from bot.sla_watch import human_duration

        label = kit.CLOCK_LABELS.get(clock_name, clock_name)
        who = f"<@{conversation.assignee_id}> " if conversation.assignee_id else ""
        line = f"SLA: {label} due in {human_duration(remaining_seconds)}"
        due = kit.slack_date(due_at.timestamp(), f"{due_at:%Y-%m-%d %H:%M} UTC")
        await self._post(session, conversation, line, [kit.section(f":hourglass: {who}*{line}* ({due})")])

    # ---- AgentHost: who may answer ---------------------------------------------------------------------

    async def is_supervisor(self, user_id: str) -> bool:
        if user_id in self.supervisor_ids:
            return True
        group = self.settings.slack_supervisor_group
        if not group or self.api is None:
            return False
        fetched_at, members = self._group
        if time.monotonic() - fetched_at > 60:
            try:
                members = await self.api.group_members(group)
                self._group = (time.monotonic(), members)
            except SendError as exc:
                log.warning("usergroups.users.list %s failed: %s", group, exc)
        return user_id in members

    async def actor(self, user: SlackUser) -> Actor:
        """The Slack user as `handoff.permissions` sees them (supervisor, agent or outsider)."""
        supervisors = {user.id} if await self.is_supervisor(user.id) else set()
        role = permissions.role_of(user.id, supervisors=supervisors, agents=self.agent_ids)
        return Actor(user.id, role, user.name)

    def _pipe(self) -> Pipeline:
        if self.pipeline is None:
            raise RuntimeError("SlackDesk.attach(pipeline) was not called")
        return self.pipeline

    async def _claim(self, conversation_id: int, user: SlackUser) -> tuple[str | None, Notice]:
        """(role, None) when `user` may answer the customer now (assigning them if nobody owns it).
        The rule is `handoff.permissions`; the pipeline checks it again under the row lock."""
        actor = await self.actor(user)
        supervisor = actor.role == permissions.SUPERVISOR
        role = "supervisor" if supervisor else "agent"
        async with self.sessionmaker() as session:
            conv = await session.get(Conversation, conversation_id)
        if conv is None:
            return None, "That conversation no longer exists."
        verdict = permissions.may(actor, Action.REPLY, state=conv.state, assignee_id=conv.assignee_id,
                                  conversation_id=conv.id)
        if not verdict.allowed:
            return None, f"{verdict.reason} Your message was NOT sent to the customer."
        if conv.state == S.ASSIGNED and conv.assignee_id not in (None, user.id):
            return role, None  # a supervisor may step in without taking it over
        if conv.state != S.ASSIGNED or conv.assignee_id != user.id:
            try:
                result = await self._pipe().assign(conversation_id, user_id=user.id, user_name=user.name,
                                                   role=role, actor=actor)
            except NotAllowed as exc:
                return None, f"{exc.reason} Your message was NOT sent to the customer."
            if result.assignee_id != user.id:
                return None, f"<@{result.assignee_id}> took it first; your message was NOT sent."
        return role, None

    async def _reply(self, conversation_id: int, user: SlackUser, text: str, *, source_id: str,
                     meta: dict[str, Any]) -> tuple[int | None, Notice]:
        async with self.sessionmaker() as session:
            if (await session.execute(select(Message.id).where(Message.source_id == source_id))).first():
                return None, None  # a retry of something already relayed: nothing twice, no notice
        role, refusal = await self._claim(conversation_id, user)
        if role is None:
            return None, refusal
        try:
            mid = await self._pipe().agent_reply(conversation_id, text=text, author_id=user.id,
                                                 author_name=user.name, role=role, source_id=source_id, meta=meta,
                                                 actor=await self.actor(user))
        except NotAllowed as exc:
            return None, f"{exc.reason} Your message was NOT sent to the customer."
        return mid, None

    async def _conversation_for_thread(self, channel: str, thread_ts: str) -> int | None:
        async with self.sessionmaker() as session:
            stmt = select(SlackThread.conversation_id).where(or_(
                (SlackThread.channel_id == channel) & (SlackThread.thread_ts == thread_ts),
                (SlackThread.esc_channel_id == channel) & (SlackThread.esc_ts == thread_ts),
            ))
            return (await session.execute(stmt)).scalars().first()

    async def _learn(self, *, article_id: str, question: str, negative: bool, agent_id: str) -> None:
        """Feed an agent's choice to the KB: at once in memory (`learn`), and durably for rebuilds."""
        if not question.strip():
            return
        if self.learn is not None:
            try:
                result = self.learn(article_id=article_id, question=question, negative=negative)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("KB learning failed for article %s", article_id)
        if self.persist_learning:
            try:
                from kb_index.store import add_phrasing

                async with self.sessionmaker() as session:
                    await add_phrasing(session=session, article_id=article_id, question=question,
                                       negative=negative, agent_id=agent_id)
            except Exception:
                log.exception("storing the learned phrasing for article %s failed", article_id)

    # ---- AgentHost: thread messages ------------------------------------------------------------------

    async def thread_reply(self, *, channel: str, thread_ts: str, ts: str, user: SlackUser, text: str,
                           files: Sequence[dict[str, Any]] = ()) -> Notice:
        conv_id = await self._conversation_for_thread(channel, thread_ts)
        if conv_id is None:
            return None  # not one of our threads
        if not text.strip():
            return "Attachments are not sent to customers; write the answer as text." if files else None
        mid, notice = await self._reply(conv_id, user, text, source_id=f"slack:{channel}:{ts}",
                                        meta={"via": "slack_thread", "slack": {"channel": channel, "ts": ts}})
        if mid is not None and files:
            return "Only the text was sent: attachments are not relayed to customers."
        return notice

    async def _relayed(self, channel: str, ts: str) -> bool:
        async with self.sessionmaker() as session:
            stmt = select(Message.id).where(Message.source_id == f"slack:{channel}:{ts}",
                                            Message.internal.is_(False))
            return (await session.execute(stmt)).first() is not None

    async def thread_edit(self, *, channel: str, thread_ts: str, ts: str, user: SlackUser, text: str) -> Notice:
        if not await self._relayed(channel, ts):
            return None
        return ("Edits are not re-sent: the customer already has your original message. "
                "Reply again in the thread to correct it.")

    async def thread_delete(self, *, channel: str, thread_ts: str, ts: str, user: SlackUser) -> Notice:
        if not await self._relayed(channel, ts):
            return None
        return "Deleted in Slack only: the customer already received that message and it cannot be unsent."

    # ---- AgentHost: buttons and modals ----------------------------------------------------------------

    async def _suggestion(self, ref: str) -> tuple[SlackSuggestion, str] | None:
        if not ref.isdigit():
            return None
        async with self.sessionmaker() as session:
            row = await session.get(SlackSuggestion, int(ref))
            if row is None:
                return None
            question = await session.get(Message, row.message_id)
            return row, (question.text if question else "")

    async def send_suggestion(self, *, suggestion_ref: str, user: SlackUser) -> Notice:
        found = await self._suggestion(suggestion_ref)
        if found is None:
            return "That suggestion is no longer available."
        row, question = found
        mid, notice = await self._reply(row.conversation_id, user, row.text, source_id=f"slack:suggestion:{row.id}",
                                        meta={"via": "slack_suggestion", "kb_article": row.article_id,
                                              "suggestion": row.id})
        if notice:
            return notice
        if mid is None:
            return "Already sent."
        await self._mark_sent(row.id, user)
        await self._learn(article_id=row.article_id, question=question, negative=False, agent_id=user.id)
        return None

    async def _mark_sent(self, suggestion_id: int, user: SlackUser) -> None:
        async with self.sessionmaker() as session, session.begin():
            row = await session.get(SlackSuggestion, suggestion_id)
            if row is not None and row.sent_at is None:
                row.sent_by, row.sent_at = user.id, utcnow()

    async def open_edit(self, *, suggestion_ref: str, user: SlackUser) -> Draft | None:
        found = await self._suggestion(suggestion_ref)
        if found is None:
            return None
        row, _ = found
        return Draft(conversation_id=row.conversation_id, suggestion_ref=str(row.id), text=row.text)

    async def edit_and_send(self, *, conversation_id: int, suggestion_ref: str | None, text: str, user: SlackUser,
                            view_id: str) -> Notice:
        found = await self._suggestion(suggestion_ref or "")
        meta: dict[str, Any] = {"via": "slack_edit"}
        if found is not None:
            meta.update(kb_article=found[0].article_id, suggestion=found[0].id, edited=found[0].text != text)
        mid, notice = await self._reply(conversation_id, user, text, source_id=f"slack:view:{view_id}", meta=meta)
        if notice or mid is None:
            return notice
        if found is not None:
            await self._mark_sent(found[0].id, user)
            await self._learn(article_id=found[0].article_id, question=found[1], negative=False, agent_id=user.id)
        return None

    async def not_helpful(self, *, suggestion_ref: str, user: SlackUser) -> Notice:
        found = await self._suggestion(suggestion_ref)
        if found is None:
            return "That suggestion is no longer available."
        row, question = found
        verdict = permissions.may(await self.actor(user), Action.FEEDBACK, state="", assignee_id=None)
        if not verdict.allowed:
            return f"{verdict.reason} Nothing was changed."
        async with self.sessionmaker() as session, session.begin():
            fresh = await session.get(SlackSuggestion, row.id)
            assert fresh is not None
            if fresh.feedback == "not_helpful":
                return "Already marked as not helpful."
            fresh.feedback, fresh.feedback_by = "not_helpful", user.id
            await store.log_event(session, kind="suggestion_not_helpful", conversation_id=row.conversation_id,
                                  data={"article_id": row.article_id, "by": user.id})
        await self._learn(article_id=row.article_id, question=question, negative=True, agent_id=user.id)
        return f"Thanks: \u201c{row.title}\u201d is marked as not helpful for this question."

    async def escalate(self, *, conversation_id: int, user: SlackUser, reason: str | None = None) -> Notice:
        if self.policy is None:
            return "Escalation is not configured."
        decision = self.policy.agent_escalation(by=user.name or user.id, reason=reason)
        try:
            if not await self._pipe().escalate(conversation_id, decision=decision, actor=await self.actor(user)):
                return "Already escalated or resolved."
        except NotAllowed as exc:
            return f"{exc.reason} Nothing was changed."
        return None

    async def resolve(self, *, conversation_id: int, user: SlackUser) -> Notice:
        try:
            if not await self._pipe().resolve(conversation_id, by=user.id, actor=await self.actor(user)):
                return "Already resolved."
        except NotAllowed as exc:
            return f"{exc.reason} Nothing was changed."
        return None

    async def take(self, *, conversation_id: int, user: SlackUser) -> Notice:
        actor = await self.actor(user)
        if actor.role != permissions.SUPERVISOR:
            return f"{permissions.may(actor, Action.TAKE, state='', assignee_id=None).reason} Nothing was assigned."
        try:
            result = await self._pipe().assign(conversation_id, user_id=user.id, user_name=user.name,
                                               role="supervisor", actor=actor)
        except NotAllowed as exc:
            return f"{exc.reason} Nothing was changed."
        if result.assignee_id != user.id:
            return f"Already taken by <@{result.assignee_id}>."
        return None if result.assigned else "You already have it."

    async def note(self, *, conversation_id: int, text: str, user: SlackUser, view_id: str) -> Notice:
        actor = await self.actor(user)
        try:
            mid = await self._pipe().agent_reply(
                conversation_id, text=text, author_id=user.id, author_name=user.name, internal=True,
                role="supervisor" if actor.role == permissions.SUPERVISOR else "agent", actor=actor,
                source_id=f"slack:view:{view_id}", meta={"via": "slack_note"})
        except NotAllowed as exc:
            return f"{exc.reason} Nothing was changed."
        if mid is None:
            return None
        async with self.sessionmaker() as session, session.begin():
            conv = await store.get_conversation(session, conversation_id=conversation_id)
            stored = await session.get(Message, mid)
            text = stored.text if stored is not None else text  # as stored: personal data masked
            await self.post_note(session, conv, text=text, user_id=user.id)
        self._wake()
        return None

    async def post_note(self, session: AsyncSession, conv: Conversation, *, text: str, user_id: str | None = None,
                        name: str | None = None) -> None:
        """Show an internal note in the conversation's thread (a Slack user by mention, else by name:
        the web console's notes)."""
        who = f"<@{user_id}>" if user_id else kit.escape(name or "someone")
        blocks = [kit.section(f":lock: *Internal note by {who}* (not sent to the customer)\n{kit.quote(text)}")]
        await self._post(session, conv, f"Internal note: {kit.escape(kit.clip(text, 150))}", blocks)

    async def open_customer(self, *, conversation_id: int, user: SlackUser) -> CustomerForm | None:
        async with self.sessionmaker() as session:
            return await customer_form(session, conversation_id=conversation_id)

    async def save_customer(self, *, conversation_id: int, values: dict[str, Any],
                            user: SlackUser) -> tuple[Notice, dict[str, str]]:
        """The context card's profile modal (`bot.customer_card`); the thread is told what changed."""
        async with self.sessionmaker() as session, session.begin():
            saved = await save_customer_form(session, conversation_id=conversation_id, values=values,
                                             actor=user.id, region=self.settings.sms_default_region)
            if saved.errors or not saved.changed:
                return saved.errors.get("conversation") or (None if saved.errors else "Nothing changed."), saved.errors
            conv = await store.get_conversation(session, conversation_id=conversation_id)
            line = f"Customer profile updated by <@{user.id}>: {kit.escape(saved.summary)}."
            await self._post(session, conv, line, [kit.section(f":bust_in_silhouette: {line}")])
            if await self._thread(session, conv.id) is not None:
                await self._refresh_card(session, conv)  # the header shows VIP and the tags
        self._wake()
        return None, {}

    # ---- AgentHost: slash command and App Home ---------------------------------------------------------

    async def command(self, *, user: SlackUser, text: str, channel: str | None) -> str:
        actor = await self.actor(user)
        gate = permissions.may_command(user_id=user.id, channel_id=channel, role=actor.role,
                                       desk_channels=self.desk_channels, agents=self.agent_ids)
        if not gate.allowed:
            return gate.reason or "Not allowed."
        if (reply := await people_command(self, user=user, text=text)) is not None:
            return reply  # available / away / release / customer (bot.people_commands)
        cmd = parse_command(text)
        if cmd.error:
            return cmd.error
        if cmd.verb == "help":
            return HELP
        if cmd.verb == "kb":
            if self.kb is None:
                return "The knowledge base is not loaded."
            hits = await self.kb.search(cmd.query, k=3)
            if not hits:
                return f"Nothing in the knowledge base for \u201c{cmd.query}\u201d."
            return "\n".join(f"\u2022 *{kit.escape(h.title)}* (`{h.article_id}`, {round(h.confidence * 100)}%): "
                             f"{kit.escape(kit.clip(h.snippet or h.answer, 200))}" for h in hits)
        if cmd.verb == "queue":
            async with self.sessionmaker() as session:
                rows = await self._rows(session, Conversation.state.in_((S.WAITING, S.ESCALATED)))
            if not rows:
                return "Nobody is waiting."
            return "\n".join(f"\u2022 #{r.conversation_id} {kit.escape(r.customer)} \u00b7 {r.channel} \u00b7 {r.state}"
                             f" \u00b7 {r.priority} \u00b7 {r.waiting}" + (f" \u00b7 <{r.link}|thread>" if r.link else "")
                             for r in rows)
        if cmd.verb == "stats":
            async with self.sessionmaker() as session:
                states, events = await counts(session)
            return ("*Open:* " + ", ".join(f"{k} {states.get(k, 0)}" for k in S.ALL)
                    + "\n*Today:* " + (", ".join(f"{k} {v}" for k, v in sorted(events.items())) or "nothing yet"))
        conv_id = cmd.conversation_id or await self._only_assigned(user.id)
        if conv_id is None:
            return "Which conversation? Add its number, e.g. `/switchboard " + cmd.verb + " 42`."
        async with self.sessionmaker() as session:
            if await session.get(Conversation, conv_id) is None:
                return f"There is no conversation #{conv_id}."
        if cmd.verb == "resolve":
            return await self.resolve(conversation_id=conv_id, user=user) or f"Resolved #{conv_id}."
        assert cmd.target_user is not None
        target = SlackUser(cmd.target_user)
        role = "supervisor" if await self.is_supervisor(target.id) else "agent"
        # Who may move a conversation someone else holds: a supervisor, or its owner handing it over
        # (handoff.permissions, checked by the pipeline under the row lock).
        async with self.sessionmaker() as session:
            before = await session.get(Conversation, conv_id)
        owner = before.assignee_id if before is not None and before.state == S.ASSIGNED else None
        try:
            result = await self._pipe().assign(conv_id, user_id=target.id, role=role, actor=actor)
        except NotAllowed as exc:
            return f"{exc.reason} Nothing was changed."
        if result.assignee_id != target.id:
            return (f"#{conv_id} is with <@{result.assignee_id}> ({result.state}): only a supervisor or "
                    f"<@{result.assignee_id}> can move it now.")
        if result.assigned and owner and owner != target.id:
            return f"#{conv_id} moved from <@{owner}> to <@{target.id}>."
        return f"#{conv_id} is now assigned to <@{target.id}>."

    async def _only_assigned(self, user_id: str) -> int | None:
        async with self.sessionmaker() as session:
            ids = (await session.execute(select(Conversation.id).where(
                Conversation.state == S.ASSIGNED, Conversation.assignee_id == user_id).limit(2))).scalars().all()
        return ids[0] if len(ids) == 1 else None

    async def home(self, *, user: SlackUser) -> dict[str, Any]:
        if (await self.actor(user)).role == permissions.OUTSIDER:
            return kit.home_view(user=user.id, mine=[], queue=[])  # the queue is for the desk's people
        async with self.sessionmaker() as session:
            mine = await self._rows(session, (Conversation.state == S.ASSIGNED) & (Conversation.assignee_id == user.id))
            queue = await self._rows(session, Conversation.state.in_((S.WAITING, S.ESCALATED)))
        return kit.home_view(user=user.id, mine=mine, queue=queue)

    async def _rows(self, session: AsyncSession, where: Any, limit: int = 40) -> list[kit.HomeRow]:
        stmt = (select(Conversation, SlackThread, Customer, ChannelIdentity)
                .join(SlackThread, SlackThread.conversation_id == Conversation.id, isouter=True)
                .join(Customer, Customer.id == Conversation.customer_id)
                .join(ChannelIdentity, ChannelIdentity.id == Conversation.identity_id)
                .where(where).order_by(priority_rank_sql(Conversation.priority),  # priority, then wait
                                       Conversation.handed_off_at.is_(None), Conversation.handed_off_at).limit(limit))
        rows = []
        now = utcnow()
        for conv, thread, customer, identity in (await session.execute(stmt)).all():
            waited = int((now - conv.handed_off_at).total_seconds() // 60) if conv.handed_off_at else None
            rows.append(kit.HomeRow(
                conversation_id=conv.id, customer=customer.display_name or _masked(identity), channel=conv.channel,
                state=conv.state, priority=conv.priority, waiting=f"waiting {waited} min" if waited is not None else "",
                link=thread_link(thread.channel_id, thread.thread_ts) if thread else None,
            ))
        return rows


__all__ = ["SlackDesk", "SlackDeliverer", "parse_routes", "thread_link"]
