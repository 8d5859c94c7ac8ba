"""Queue actions beside the pipeline's assign/resolve: release (unassign) a conversation.

    await release(sessionmaker, desk, conversation_id=42, by="U123")   # back to waiting, nobody's

Only the owner or a supervisor may release (`handoff.permissions`, checked under the row lock).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.audit import Note
from bot.desk import Desk
from bot.messages import utcnow
from bot.models import ConversationState as S
from bot.states import check_move
from handoff import permissions
from handoff.permissions import Action, Actor


@dataclass(frozen=True, slots=True)
class ReleaseResult:
    released: bool
    message: str


async def release(sessionmaker: async_sessionmaker[AsyncSession], desk: Desk, *, conversation_id: int, by: str,
                  is_supervisor: bool = False, actor: Actor | None = None,
                  audit: Note | None = None) -> ReleaseResult:
    actor = actor or Actor(by, permissions.SUPERVISOR if is_supervisor else permissions.AGENT)
    async with sessionmaker() as session, session.begin():
        conv = await store.get_conversation(session, conversation_id=conversation_id, lock=True)
        if conv.state != S.ASSIGNED:
            return ReleaseResult(False, f"#{conv.id} is {conv.state}, not assigned: nothing to release.")
        verdict = permissions.may(actor, Action.RELEASE, state=conv.state, assignee_id=conv.assignee_id,
                                  conversation_id=conv.id)
        if not verdict.allowed:
            return ReleaseResult(False, f"{verdict.reason} Nothing was changed.")
        previous = conv.assignee_id
        check_move(conv.state, S.WAITING)
        conv.state = S.WAITING
        conv.updated_at = utcnow()
        conv.assignee_id = conv.assignee_name = conv.assignee_role = None
        await store.log_event(session, kind="released", conversation_id=conv.id, data={"by": by, "from": previous})
        await desk.on_state_change(session, conversation=conv, old=S.ASSIGNED, new=S.WAITING,
                                   reason=f"released by {by}")
        if audit is not None:
            await audit.write(session)
    return ReleaseResult(True, f"#{conversation_id} is back in the queue.")
