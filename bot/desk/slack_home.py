"""The slash command (`/switchboard ...`) and the App Home tab: the last part of the Slack listeners'
`channels.slack.AgentHost`. `SlackHome` is the whole host: the actions of `bot.desk.slack_actions`
plus these.

    host = SlackHome(kb=kb, settings=settings, sessionmaker=sm, agents=agents, desk=desk, api=api)
    channel = SlackChannel(settings, host=host, api=api)

The people verbs (available, away, release, customer, report) are `bot.desk.people_commands`; the
rest (help, kb, queue, stats, resolve, assign) are answered here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.desk.people_commands import people_command
from bot.desk.slack_actions import SlackActions
from bot.desk.slack_deliver import counts, masked
from bot.messages import utcnow
from bot.models import ChannelIdentity, Conversation, Customer
from bot.models import ConversationState as S
from bot.slack_models import SlackThread
from channels import slack_blocks as kit
from channels.slack import SlackUser
from channels.slack_commands import HELP, parse_command
from channels.slack_format import thread_link
from handoff import permissions
from handoff.permissions import NotAllowed
from handoff.queue import priority_rank_sql
from kb_index.types import Searcher


class SlackHome(SlackActions):
    def __init__(self, *, kb: Searcher | None = None, **actions: Any) -> None:
        super().__init__(**actions)
        self.kb = kb

    async def command(self, *, user: SlackUser, text: str, channel: str | None) -> str:
        actor = await self.actor(user)
        gate = permissions.may_command(user_id=user.id, channel_id=channel, role=actor.role,
                                       desk_channels=self.desk.desk_channels, agents=self.agent_ids)
        if not gate.allowed:
            return gate.reason or "Not allowed."
        if (reply := await people_command(self, user=user, text=text)) is not None:
            return reply  # available / away / release / customer / report (bot.desk.people_commands)
        cmd = parse_command(text)
        if cmd.error:
            return cmd.error
        if cmd.verb == "help":
            return HELP
        if cmd.verb == "kb":
            return await self._kb(cmd.query)
        if cmd.verb == "queue":
            async with self.sessionmaker() as session:
                rows = await self._rows(session, Conversation.state.in_((S.WAITING, S.ESCALATED)))
            if not rows:
                return "Nobody is waiting."
            return "\n".join(
                f"\u2022 #{r.conversation_id} {kit.escape(r.customer)} \u00b7 {r.channel} \u00b7 {r.state}"
                f" \u00b7 {r.priority} \u00b7 {r.waiting}" + (f" \u00b7 <{r.link}|thread>" if r.link else "")
                for r in rows)
        if cmd.verb == "stats":
            async with self.sessionmaker() as session:
                states, events = await counts(session)
            return ("*Open:* " + ", ".join(f"{k} {states.get(k, 0)}" for k in S.ALL)
                    + "\n*Today:* " + (", ".join(f"{k} {v}" for k, v in sorted(events.items())) or "nothing yet"))
        conv_id = cmd.conversation_id or await self.only_assigned(user.id)
        if conv_id is None:
            return "Which conversation? Add its number, e.g. `/switchboard " + cmd.verb + " 42`."
        async with self.sessionmaker() as session:
            if await session.get(Conversation, conv_id) is None:
                return f"There is no conversation #{conv_id}."
        if cmd.verb == "resolve":
            return await self.resolve(conversation_id=conv_id, user=user) or f"Resolved #{conv_id}."
        assert cmd.target_user is not None
        return await self._assign(conv_id, SlackUser(cmd.target_user), actor)

    async def _kb(self, query: str) -> str:
        if self.kb is None:
            return "The knowledge base is not loaded."
        hits = await self.kb.search(query, k=3)
        if not hits:
            return f"Nothing in the knowledge base for \u201c{query}\u201d."
        return "\n".join(f"\u2022 *{kit.escape(h.title)}* (`{h.article_id}`, {round(h.confidence * 100)}%): "
                         f"{kit.escape(kit.clip(h.snippet or h.answer, 200))}" for h in hits)

    async def _assign(self, conv_id: int, target: SlackUser, actor: permissions.Actor) -> str:
        role = "supervisor" if await self.is_supervisor(target.id) else "agent"
        # Who may move a conversation someone else holds: a supervisor, or its owner handing it over
        # (handoff.permissions, checked by `Agents.assign` under the row lock).
        async with self.sessionmaker() as session:
            before = await session.get(Conversation, conv_id)
        owner = before.assignee_id if before is not None and before.state == S.ASSIGNED else None
        try:
            result = await self.agents.assign(conv_id, user_id=target.id, role=role, actor=actor)
        except NotAllowed as exc:
            return f"{exc.reason} Nothing was changed."
        if result.assignee_id != target.id:
            return (f"#{conv_id} is with <@{result.assignee_id}> ({result.state}): only a supervisor or "
                    f"<@{result.assignee_id}> can move it now.")
        if result.assigned and owner and owner != target.id:
            return f"#{conv_id} moved from <@{owner}> to <@{target.id}>."
        return f"#{conv_id} is now assigned to <@{target.id}>."

    async def only_assigned(self, user_id: str) -> int | None:
        """The one conversation `user_id` holds (None: none, or more than one)."""
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
                conversation_id=conv.id, customer=customer.display_name or masked(identity), channel=conv.channel,
                state=conv.state, priority=conv.priority, waiting=f"waiting {waited} min" if waited is not None else "",
                link=thread_link(thread.channel_id, thread.thread_ts) if thread else None,
            ))
        return rows
