"""Agents mark themselves available or away (`/switchboard available|away`); auto-assignment reads it."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import utcnow
from bot.models import Conversation
from bot.models import ConversationState as S
from bot.presence_models import AgentPresence

AVAILABLE, AWAY = "available", "away"


async def set_presence(session: AsyncSession, *, agent_id: str, status: str, name: str | None = None,
                       cap: int | None = None) -> AgentPresence:
    if status not in (AVAILABLE, AWAY):
        raise ValueError(f"status must be {AVAILABLE} or {AWAY}, not {status!r}")
    if cap is not None and cap < 0:
        raise ValueError("a cap cannot be negative")
    row = await session.get(AgentPresence, agent_id)
    if row is None:
        row = AgentPresence(agent_id=agent_id)
        session.add(row)
    row.status = status
    row.updated_at = utcnow()
    if name:
        row.name = name
    if cap is not None:
        row.cap = cap
    await session.flush()
    return row


async def list_presence(session: AsyncSession) -> list[AgentPresence]:
    return list((await session.execute(select(AgentPresence).order_by(AgentPresence.agent_id))).scalars())


async def open_loads(session: AsyncSession, *, agent_id: str | None = None) -> dict[str, int]:
    """agent id -> conversations assigned to them now (only `agent_id`'s when given)."""
    who = Conversation.assignee_id.is_not(None) if agent_id is None else Conversation.assignee_id == agent_id
    rows = await session.execute(select(Conversation.assignee_id, func.count(Conversation.id)).where(
        Conversation.state == S.ASSIGNED, who).group_by(Conversation.assignee_id))
    return {str(a): int(n) for a, n in rows.all()}
