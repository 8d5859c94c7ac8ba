"""Slack clicks and thread replies -> agent actions (`bot.agents.Agents`): the actions half of the
Slack listeners' `channels.slack.AgentHost` (the slash command and App Home are `bot.desk.slack_home`).

    actions = SlackActions(settings=settings, sessionmaker=sm, agents=agents, desk=desk, api=api,
                           learn=kb.learn, wake=worker.wake)
    notice = await actions.thread_reply(channel="C1", thread_ts="1.0", ts="2.0", user=SlackUser("U1"), text="Hi")

Who someone is (supervisor, agent, outsider) is decided here from the settings and the supervisors'
user group; what they may do is `handoff.permissions`, checked by `Agents` under the row lock. A
refusal comes back as a notice shown to the acting user only.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.agents import Agents
from bot.desk.customer_card import customer_form, save_customer_form
from bot.desk.slack import SlackDesk
from bot.messages import utcnow
from bot.models import Message
from bot.settings import Settings
from bot.slack_models import SlackSuggestion, SlackThread
from channels import slack_blocks as kit
from channels.base import SendError
from channels.slack import Draft, Notice, SlackUser
from channels.slack_customer import CustomerForm
from handoff import permissions
from handoff.permissions import Action, Actor, NotAllowed
from kb_index.store import add_phrasing

log = logging.getLogger("switchboard.slack")

Learn = Callable[..., Any]  # KnowledgeBase.learn(article_id=, question=, negative=), sync or async
NOT_SENT = "Your message was NOT sent to the customer."


class SlackActions:
    def __init__(
        self,
        *,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        agents: Agents,
        desk: SlackDesk,
        api: Any = None,
        learn: Learn | None = None,
        wake: Callable[[], None] | None = None,
        persist_learning: bool = True,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.agents = agents
        self.desk = desk
        self.api = api  # channels.slack_api.SlackApi: only for the supervisor group look-up
        self.learn = learn
        self.persist_learning = persist_learning  # kb_index.store.add_phrasing, re-applied by every rebuild
        self.wake = wake or (lambda: None)
        self.agent_ids = frozenset(u.strip() for u in settings.slack_agent_ids.split(",") if u.strip())
        self._group: tuple[float, set[str]] = (0.0, set())

    # ---- who is acting -------------------------------------------------------------------------------

    async def is_supervisor(self, user_id: str) -> bool:
        if user_id in self.desk.supervisor_ids:
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

    async def _reply(self, conversation_id: int, user: SlackUser, text: str, *, source_id: str,
                     meta: dict[str, Any]) -> tuple[int | None, Notice]:
        """(message id, None) once sent; (None, None) for a retry already sent; (None, why not)."""
        actor = await self.actor(user)
        role = "supervisor" if actor.role == permissions.SUPERVISOR else "agent"
        try:
            mid = await self.agents.reply(conversation_id, text=text, author_id=user.id, author_name=user.name,
                                          role=role, source_id=source_id, meta=meta, actor=actor)
        except NotAllowed as exc:
            return None, f"{exc.reason} {NOT_SENT}"
        except LookupError:
            return None, f"That conversation no longer exists. {NOT_SENT}"
        return mid, None

    # ---- thread messages -------------------------------------------------------------------------------

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

    async def _conversation_for_thread(self, channel: str, thread_ts: str) -> int | None:
        async with self.sessionmaker() as session:
            stmt = select(SlackThread.conversation_id).where(or_(
                (SlackThread.channel_id == channel) & (SlackThread.thread_ts == thread_ts),
                (SlackThread.esc_channel_id == channel) & (SlackThread.esc_ts == thread_ts),
            ))
            return (await session.execute(stmt)).scalars().first()

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

    # ---- suggestions: send, edit and send, not helpful --------------------------------------------------

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
                async with self.sessionmaker() as session:
                    await add_phrasing(session=session, article_id=article_id, question=question,
                                       negative=negative, agent_id=agent_id)
            except Exception:
                log.exception("storing the learned phrasing for article %s failed", article_id)

    # ---- conversation buttons: escalate, resolve, take, note ---------------------------------------------

    async def escalate(self, *, conversation_id: int, user: SlackUser, reason: str | None = None) -> Notice:
        decision = self.agents.policy.agent_escalation(by=user.name or user.id, reason=reason)
        try:
            if not await self.agents.escalate(conversation_id, decision=decision, actor=await self.actor(user)):
                return "Already escalated or resolved."
        except NotAllowed as exc:
            return f"{exc.reason} Nothing was changed."
        return None

    async def resolve(self, *, conversation_id: int, user: SlackUser) -> Notice:
        try:
            if not await self.agents.resolve(conversation_id, by=user.id, actor=await self.actor(user)):
                return "Already resolved."
        except NotAllowed as exc:
            return f"{exc.reason} Nothing was changed."
        return None

    async def take(self, *, conversation_id: int, user: SlackUser) -> Notice:
        actor = await self.actor(user)
        if actor.role != permissions.SUPERVISOR:
            return f"{permissions.may(actor, Action.TAKE, state='', assignee_id=None).reason} Nothing was assigned."
        try:
            result = await self.agents.assign(conversation_id, user_id=user.id, user_name=user.name,
                                              role="supervisor", actor=actor)
        except NotAllowed as exc:
            return f"{exc.reason} Nothing was changed."
        if result.assignee_id != user.id:
            return f"Already taken by <@{result.assignee_id}>."
        return None if result.assigned else "You already have it."

    async def note(self, *, conversation_id: int, text: str, user: SlackUser, view_id: str) -> Notice:
        actor = await self.actor(user)
        try:
            mid = await self.agents.note(
                conversation_id, text=text, author_id=user.id, author_name=user.name,
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
            await self.desk.post_note(session, conv, text=text, user_id=user.id)
        self.wake()
        return None

    # ---- the context card's customer profile -------------------------------------------------------------

    async def open_customer(self, *, conversation_id: int, user: SlackUser) -> CustomerForm | None:
        async with self.sessionmaker() as session:
            return await customer_form(session, conversation_id=conversation_id)

    async def save_customer(self, *, conversation_id: int, values: dict[str, Any],
                            user: SlackUser) -> tuple[Notice, dict[str, str]]:
        """The context card's profile modal (`bot.desk.customer_card`); the thread is told what changed."""
        async with self.sessionmaker() as session, session.begin():
            saved = await save_customer_form(session, conversation_id=conversation_id, values=values,
                                             actor=user.id, region=self.settings.sms_default_region)
            if saved.errors or not saved.changed:
                return saved.errors.get("conversation") or (None if saved.errors else "Nothing changed."), saved.errors
            conv = await store.get_conversation(session, conversation_id=conversation_id)
            await self.desk.profile_changed(
                session, conv, line=f"Customer profile updated by <@{user.id}>: {kit.escape(saved.summary)}.")
        self.wake()
        return None, {}
