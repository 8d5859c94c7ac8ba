"""What a console user does to a conversation: the same agent actions the Slack desk calls
(`bot.agents.Agents`: `assign`, `reply`, `note`, `escalate`, `resolve`, `unassign`), with the
same rules (an escalation is a supervisor's; someone else's conversation moves only by its owner or
a supervisor), each writing one audit entry inside the action's own transaction.

    result = await Actions(agents, sessionmaker, broadcaster).reply(7, viewer.user, "On it", nonce="...")

A console user is known to the pipeline as ``console:<username>`` (assignee id, message author).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import customers_admin
from bot.agents import Agents
from bot.audit import Note
from bot.audit import record as audit_record
from bot.console.live import Broadcaster, mark_changed
from bot.console.users import ConsoleUser, UserError, get_user
from bot.customers_admin import CustomerError
from bot.models import Conversation, Message
from bot.models import ConversationState as S
from handoff.permissions import Actor

MAX_TEXT = 4000


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    message: str


def _note(user: ConsoleUser, action: str, conversation_id: int, **detail: object) -> Note:
    return Note(user.actor, action, "conversation", conversation_id, dict(detail))


def _role(user: ConsoleUser) -> str:
    return "supervisor" if user.is_supervisor else "agent"


def _actor(user: ConsoleUser) -> Actor:
    """The console user as the pipeline's permission rule sees them (handoff.permissions, the one
    rule every desk's actions are checked by under the row lock)."""
    return Actor(user.actor, _role(user), user.name)


class Actions:
    def __init__(self, agents: Agents, sessionmaker: async_sessionmaker[AsyncSession],
                 broadcaster: Broadcaster) -> None:
        self.agents = agents
        self.sessionmaker = sessionmaker
        self.broadcaster = broadcaster

    async def _conv(self, conversation_id: int) -> Conversation | None:
        async with self.sessionmaker() as session:
            return await session.get(Conversation, conversation_id)

    def _refusal(self, conv: Conversation | None, user: ConsoleUser) -> str | None:
        """Why `user` may not answer or take `conv` now (None: they may)."""
        if conv is None:
            return "That conversation does not exist."
        if conv.state == S.ESCALATED and not user.is_supervisor:
            return "This conversation is escalated: a supervisor must take it."
        if conv.state == S.ASSIGNED and conv.assignee_id not in (None, user.actor) and not user.is_supervisor:
            return f"{conv.assignee_name or conv.assignee_id} owns this conversation."
        return None

    async def take(self, conversation_id: int, user: ConsoleUser) -> Outcome:
        conv = await self._conv(conversation_id)
        refusal = self._refusal(conv, user)
        if refusal:
            return Outcome(False, refusal)
        result = await self.agents.assign(conversation_id, user_id=user.actor, user_name=user.name,
                                          role=_role(user), actor=_actor(user),
                                          audit=_note(user, "take", conversation_id))
        if result.assignee_id != user.actor:
            return Outcome(False, f"Already taken by {result.assignee_id}.")
        return Outcome(True, "You have it." if result.assigned else "You already have it.")

    async def reply(self, conversation_id: int, user: ConsoleUser, text: str, *, nonce: str) -> Outcome:
        text = text.strip()
        if not text:
            return Outcome(False, "Write a reply first.")
        if len(text) > MAX_TEXT:
            return Outcome(False, f"A reply is at most {MAX_TEXT} characters.")
        conv = await self._conv(conversation_id)
        refusal = self._refusal(conv, user)
        if refusal:
            return Outcome(False, refusal + " Your reply was NOT sent.")
        assert conv is not None
        if conv.state != S.ASSIGNED or conv.assignee_id is None:  # nobody's: answering takes it
            taken = await self.take(conversation_id, user)
            if not taken.ok:
                return Outcome(False, taken.message + " Your reply was NOT sent.")
        mid = await self.agents.reply(
            conversation_id, text=text, author_id=user.actor, author_name=user.name, role=_role(user),
            source_id=f"console:{nonce}", meta={"via": "console"}, actor=_actor(user),
            audit=_note(user, "reply", conversation_id, chars=len(text)),
        )
        return Outcome(True, "Sent." if mid is not None else "Already sent.")

    async def note(self, conversation_id: int, user: ConsoleUser, text: str, *, nonce: str) -> Outcome:
        text = text.strip()
        if not text or len(text) > MAX_TEXT:
            return Outcome(False, f"A note is 1-{MAX_TEXT} characters.")
        if await self._conv(conversation_id) is None:
            return Outcome(False, "That conversation does not exist.")
        mid = await self.agents.note(
            conversation_id, text=text, author_id=user.actor, author_name=user.name, role=_role(user),
            source_id=f"console:{nonce}", meta={"via": "console_note"}, actor=_actor(user),
            audit=_note(user, "note", conversation_id, chars=len(text)),
        )
        if mid is None:
            return Outcome(True, "Already added.")
        post_note = getattr(self.agents.desk, "post_note", None)  # the Slack desk shows notes in its thread
        if post_note is not None:
            async with self.sessionmaker() as session, session.begin():
                conv = await session.get(Conversation, conversation_id)
                stored = await session.get(Message, mid)  # as stored: personal data masked at the door
                await post_note(session, conv, text=stored.text if stored is not None else text,
                                name=f"{user.name} (console)")
        self.broadcaster.announce([conversation_id])  # a note changes no state: no desk hook announced it
        return Outcome(True, "Note added (not sent to the customer).")

    async def assign(self, conversation_id: int, user: ConsoleUser, to_username: str) -> Outcome:
        conv = await self._conv(conversation_id)
        if conv is None:
            return Outcome(False, "That conversation does not exist.")
        if not user.is_supervisor and conv.assignee_id != user.actor:
            return Outcome(False, "Only a supervisor or the conversation's owner can assign it.")
        async with self.sessionmaker() as session:
            try:
                target = await get_user(session, username=to_username)
            except UserError:
                return Outcome(False, f"No console user {to_username!r}.")
        if not target.active:
            return Outcome(False, f"{target.username} is disabled.")
        if conv.state == S.ESCALATED and not target.is_supervisor:
            return Outcome(False, "An escalated conversation goes to a supervisor.")
        result = await self.agents.assign(
            conversation_id, user_id=target.actor, user_name=target.name, role=_role(target), force=True,
            actor=_actor(user), audit=_note(user, "assign", conversation_id, to=target.actor),
        )
        if result.assignee_id != target.actor:
            return Outcome(False, "Not assigned.")
        return Outcome(True, f"Assigned to {target.name}.")

    async def escalate(self, conversation_id: int, user: ConsoleUser, reason: str | None) -> Outcome:
        reason = (reason or "").strip()[:300] or None
        decision = self.agents.policy.agent_escalation(by=user.name, reason=reason)
        done = await self.agents.escalate(conversation_id, decision=decision, actor=_actor(user),
                                          audit=_note(user, "escalate", conversation_id))
        return Outcome(done, "Escalated to the supervisors." if done else "Already escalated or resolved.")

    async def resolve(self, conversation_id: int, user: ConsoleUser) -> Outcome:
        conv = await self._conv(conversation_id)
        if conv is not None and conv.state == S.ASSIGNED and conv.assignee_id != user.actor \
                and not user.is_supervisor:
            return Outcome(False, f"{conv.assignee_name or conv.assignee_id} owns this conversation.")
        done = await self.agents.resolve(conversation_id, by=user.actor, actor=_actor(user),
                                         audit=_note(user, "resolve", conversation_id))
        return Outcome(done, "Resolved." if done else "Already resolved.")

    async def release(self, conversation_id: int, user: ConsoleUser) -> Outcome:
        result = await self.agents.unassign(conversation_id, by=user.actor, is_supervisor=user.is_supervisor,
                                            actor=_actor(user), audit=_note(user, "release", conversation_id))
        return Outcome(result.released, result.message)

    async def set_customer(self, conversation_id: int, user: ConsoleUser, *, vip: bool,
                           add_tags: list[str], remove_tags: list[str]) -> Outcome:
        async with self.sessionmaker() as session, session.begin():
            conv = await session.get(Conversation, conversation_id)
            if conv is None:
                return Outcome(False, "That conversation does not exist.")
            try:
                customer = await customers_admin.set_profile(session, customer_id=conv.customer_id, vip=vip)
                customer = await customers_admin.tag(session, customer_id=customer.id, add=add_tags,
                                                     remove=remove_tags)
            except CustomerError as exc:
                return Outcome(False, str(exc))
            await audit_record(session, actor=user.actor, action="customer.update", target_kind="customer",
                               target_id=customer.id, detail={"vip": vip, "tags": list(customer.tags or []),
                                                              "conversation_id": conversation_id})
            mark_changed(session, self.broadcaster, conversation_id)
        return Outcome(True, "Customer updated.")


__all__ = ["Actions", "Outcome", "MAX_TEXT"]
