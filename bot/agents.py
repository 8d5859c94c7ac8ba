"""What a person does to a conversation, the same for every desk (Slack, the web console) and for
the application's own jobs (auto-assignment, idle timers): reply, note, assign, unassign,
escalate, resolve.

    agents = Agents(sessionmaker=sm, settings=settings, conversations=conversations, policy=policy,
                    wake=worker.wake)
    await agents.reply(42, text="On it", author_id="U1", author_name="Ann", actor=Actor("U1", AGENT))

Each action is one transaction holding the conversation's row lock. With an `actor` (every desk
passes one), `handoff.permissions` decides under that lock (`authorise`) and refuses with
`NotAllowed`, nothing written; without one it is the application's own job. `audit` (the console's
actions) is written in the same transaction. A reply or note carrying a `source_id` (the Slack
event, the console's form nonce) is stored once: a retry returns None.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.audit import Note
from bot.conversations import Conversations
from bot.desk.base import Desk
from bot.messages import utcnow
from bot.models import Conversation, Message
from bot.models import ConversationState as S
from bot.privacy import Redactor
from bot.settings import Settings
from handoff import permissions
from handoff.permissions import Action, Actor
from handoff.policy import Decision, Policy


@dataclass(frozen=True, slots=True)
class AssignResult:
    assigned: bool  # this call made the assignment
    assignee_id: str | None  # who owns the conversation now
    state: str


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    released: bool
    message: str


def authorise(actor: Actor | None, action: Action, conv: Conversation) -> None:
    """The one place every desk's action is checked (under the conversation's row lock); None: the
    application's own job."""
    if actor is not None:
        permissions.check(actor, action, state=conv.state, assignee_id=conv.assignee_id, conversation_id=conv.id)


class Agents:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        conversations: Conversations,
        policy: Policy,
        redactor: Redactor | None = None,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.conversations = conversations
        self.policy = policy  # desks build an agent's escalation with `policy.agent_escalation`
        self.redactor = redactor or Redactor.from_settings(settings)
        self.wake = wake or (lambda: None)

    @property
    def desk(self) -> Desk:
        return self.conversations.desk

    # ---- messages ------------------------------------------------------------------------------------

    async def reply(
        self, conversation_id: int, *, text: str, author_id: str, author_name: str | None = None,
        role: str = "agent", source_id: str | None = None, meta: dict[str, Any] | None = None,
        actor: Actor | None = None, audit: Note | None = None,
    ) -> int | None:
        """Send the customer a person's reply. Answering takes the conversation when nobody holds it
        (and, for a supervisor, when it is escalated). Returns the message id, None for a retry."""
        clean = self.redactor.inbound(text, author="agent")  # masked before storing or sending
        try:
            async with self.sessionmaker() as session, session.begin():
                conv = await self._locked(session, conversation_id, source_id)
                if conv is None:
                    return None
                authorise(actor, Action.REPLY, conv)
                if conv.state in (S.BOT, S.WAITING, S.RESOLVED) or (conv.state == S.ESCALATED and role == "supervisor"):
                    if conv.state == S.RESOLVED:
                        self.conversations.move(conv, S.BOT, reason="agent wrote after resolve")
                    forced = actor is not None and actor.role in (permissions.SUPERVISOR, permissions.SYSTEM)
                    await self._assign(session, conv, user_id=author_id, user_name=author_name, role=role,
                                       forced=forced)
                msg = await self.conversations.say(
                    session, conv, clean.text, author_kind=role, author_id=author_id, author_name=author_name,
                    source_id=source_id, meta=meta,
                )
                if conv.first_human_response_at is None:
                    conv.first_human_response_at = utcnow()
                    await store.log_event(session, kind="first_human_response", conversation_id=conv.id,
                                          data={"by": author_id})
                await store.log_event(session, kind="agent_replied", conversation_id=conv.id, data={"by": author_id})
                if audit is not None:
                    await audit.write(session)
        except IntegrityError:
            return None  # the same source message raced in twice
        self.wake()
        return msg.id

    async def note(
        self, conversation_id: int, *, text: str, author_id: str, author_name: str | None = None,
        role: str = "agent", source_id: str | None = None, meta: dict[str, Any] | None = None,
        actor: Actor | None = None, audit: Note | None = None,
    ) -> int | None:
        """An internal note: stored on the conversation, never sent. Returns its id, None for a retry."""
        clean = self.redactor.inbound(text, author="note")  # notes keep no contact details either
        try:
            async with self.sessionmaker() as session, session.begin():
                conv = await self._locked(session, conversation_id, source_id)
                if conv is None:
                    return None
                authorise(actor, Action.NOTE, conv)
                note = await store.add_message(
                    session, conversation_id=conv.id, channel=conv.channel, direction="out",
                    author_kind=role, author_id=author_id, author_name=author_name, text=clean.text,
                    sealed_text=clean.sealed, internal=True, source_id=source_id, meta=meta or {},
                )
                if audit is not None:
                    await audit.write(session)
        except IntegrityError:
            return None
        return note.id

    @staticmethod
    async def _locked(session: AsyncSession, conversation_id: int, source_id: str | None) -> Conversation | None:
        """The conversation under its row lock; None when `source_id` is already stored (a retry)."""
        if source_id is not None:
            if (await session.execute(select(Message.id).where(Message.source_id == source_id))).first():
                return None
        return await store.get_conversation(session, conversation_id=conversation_id, lock=True)

    # ---- ownership -----------------------------------------------------------------------------------

    async def assign(
        self, conversation_id: int, *, user_id: str, user_name: str | None = None, role: str = "agent",
        force: bool = False, actor: Actor | None = None, audit: Note | None = None,
    ) -> AssignResult:
        """Give the conversation to `user_id`. Someone else's (or an escalated) conversation moves only
        to a supervisor, or with `force` (the caller decided it may: a supervisor, or the owner handing
        over); a forced move is logged with ``"forced": True`` and tells the customer nothing new.
        With `actor`, `handoff.permissions` decides (a supervisor taking it: TAKE) and the owner or a
        supervisor moving it is a forced move; refused raises `NotAllowed` with nothing changed."""
        async with self.sessionmaker() as session, session.begin():
            conv = await store.get_conversation(session, conversation_id=conversation_id, lock=True)
            if actor is not None:
                taking = actor.id == user_id and role == "supervisor"
                authorise(actor, Action.TAKE if taking else Action.ASSIGN, conv)
                owner = conv.state == S.ASSIGNED and conv.assignee_id == actor.id
                force = force or owner or actor.role in (permissions.SUPERVISOR, permissions.SYSTEM)
            if conv.state == S.ESCALATED and role != "supervisor" and not force:
                return AssignResult(False, conv.assignee_id, conv.state)
            if (conv.state == S.ASSIGNED and conv.assignee_id and conv.assignee_id != user_id
                    and role != "supervisor" and not force):
                return AssignResult(False, conv.assignee_id, conv.state)
            if conv.state == S.RESOLVED:
                self.conversations.move(conv, S.BOT, reason="assigned after resolve")
            changed = await self._assign(session, conv, user_id=user_id, user_name=user_name, role=role,
                                         forced=force)
            if changed and audit is not None:
                await audit.write(session)
            result = AssignResult(changed, conv.assignee_id, conv.state)
        self.wake()
        return result

    async def _assign(
        self, session: AsyncSession, conv: Conversation, *, user_id: str, user_name: str | None, role: str,
        forced: bool = False,
    ) -> bool:
        if conv.state == S.ASSIGNED and conv.assignee_id == user_id:
            return False
        old, previous = conv.state, conv.assignee_id
        if old == S.ASSIGNED:  # re-assignment: same state (the state machine has no assigned -> assigned)
            conv.updated_at = utcnow()
        else:
            self.conversations.move(conv, S.ASSIGNED, reason=f"{role} {user_id}")
        conv.assignee_id, conv.assignee_name, conv.assignee_role = user_id, user_name, role
        conv.handed_off_at = conv.handed_off_at or utcnow()
        data: dict[str, Any] = {"to": user_id, "role": role, "from_state": old}
        if forced:
            data.update({"forced": True, "from": previous})
        await store.log_event(session, kind="assigned", conversation_id=conv.id, data=data)
        if not conv.takeover_notified:
            conv.takeover_notified = True
            conv.handoff_notified = True
            name = user_name or ("A supervisor" if role == "supervisor" else "An agent")
            await self.conversations.say(session, conv, self.settings.takeover_message.format(name=name),
                                         author_kind="system")
        await self.desk.on_state_change(session, conversation=conv, old=old, new=S.ASSIGNED, reason=role)
        return True

    async def unassign(
        self, conversation_id: int, *, by: str, is_supervisor: bool = False, actor: Actor | None = None,
        audit: Note | None = None,
    ) -> ReleaseResult:
        """Give an assigned conversation back to the queue (waiting, nobody's): its owner or a supervisor.
        Raises `LookupError` for no such conversation."""
        actor = actor or Actor(by, permissions.SUPERVISOR if is_supervisor else permissions.AGENT)
        async with self.sessionmaker() as session, session.begin():
            conv = await store.get_conversation(session, conversation_id=conversation_id, lock=True)
            if conv.state != S.ASSIGNED:
                return ReleaseResult(False, f"#{conv.id} is {conv.state}, not assigned: nothing to release.")
            verdict = permissions.may(actor, Action.RELEASE, state=conv.state, assignee_id=conv.assignee_id,
                                      conversation_id=conv.id)
            if not verdict.allowed:
                return ReleaseResult(False, f"{verdict.reason} Nothing was changed.")
            previous = conv.assignee_id
            self.conversations.move(conv, S.WAITING, reason=f"released by {by}")
            conv.assignee_id = conv.assignee_name = conv.assignee_role = None
            await store.log_event(session, kind="released", conversation_id=conv.id,
                                  data={"by": by, "from": previous})
            await self.desk.on_state_change(session, conversation=conv, old=S.ASSIGNED, new=S.WAITING,
                                            reason=f"released by {by}")
            if audit is not None:
                await audit.write(session)
        self.wake()
        return ReleaseResult(True, f"#{conversation_id} is back in the queue.")

    # ---- escalate and resolve ------------------------------------------------------------------------

    async def escalate(
        self, conversation_id: int, *, decision: Decision, actor: Actor | None = None, audit: Note | None = None
    ) -> bool:
        async with self.sessionmaker() as session, session.begin():
            conv = await store.get_conversation(session, conversation_id=conversation_id, lock=True)
            authorise(actor, Action.ESCALATE, conv)
            if conv.state in (S.ESCALATED, S.RESOLVED):
                return False
            if decision.target != "supervisor":
                decision = Decision(decision.trigger, decision.evidence, "supervisor", decision.priority)
            await self.conversations.hand_off(session, conv, decision)
            if audit is not None:
                await audit.write(session)
        self.wake()
        return True

    async def resolve(
        self, conversation_id: int, *, by: str | None = None, actor: Actor | None = None, audit: Note | None = None
    ) -> bool:
        async with self.sessionmaker() as session, session.begin():
            conv = await store.get_conversation(session, conversation_id=conversation_id, lock=True)
            authorise(actor, Action.RESOLVE, conv)
            if conv.state == S.RESOLVED:
                return False
            old = conv.state
            self.conversations.move(conv, S.RESOLVED, reason=by)
            conv.resolved_at = utcnow()
            conv.low_confidence_streak = 0
            await store.log_event(session, kind="resolved", conversation_id=conv.id, data={"by": by})
            await self.desk.on_state_change(session, conversation=conv, old=old, new=S.RESOLVED, reason=by)
            if audit is not None:
                await audit.write(session)
        self.wake()
        return True
