"""Auto-assignment sweep (`AUTO_ASSIGN=round_robin|least_loaded`): waiting conversations go to
available agents (`bot.presence`), priority first, never past an agent's cap (`handoff.assign`).

Escalated conversations are left to supervisors. Each assignment goes through
`Agents.assign` (which refuses a conversation someone took meanwhile), and is logged as ``auto_assigned``.

One round at a time across processes: on PostgreSQL a round holds a transaction-level advisory
lock (`ROUND_LOCK`) while it reads the loads and assigns, so two workers never plan from the same
loads and push an agent past their cap; a worker that finds the lock taken skips its round (the
other one is doing it). SQLite runs one worker, in process.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.messages import utcnow
from bot.models import Conversation
from bot.models import ConversationState as S
from bot.presence import AVAILABLE, list_presence, open_loads
from bot.presence_models import AgentPresence
from handoff.assign import AgentLoad, Strategy, plan_assignments
from handoff.queue import QueueItem, priority_rank_sql

log = logging.getLogger("switchboard.assign")
ROUND_LOCK = 0x5357_4153_5349_474E & 0x7FFF_FFFF_FFFF_FFFF  # "SWASSIGN": pg_try_advisory_xact_lock's key


class Assigner(Protocol):
    async def assign(self, conversation_id: int, *, user_id: str, user_name: str | None = None,
                     role: str = "agent", force: bool = False) -> Any: ...


async def waiting_queue(session: AsyncSession, *, limit: int = 200) -> list[QueueItem]:
    """Waiting conversations, priority first, then the longest wait (the order agents see)."""
    rows = await session.execute(
        select(Conversation.id, Conversation.priority, Conversation.handed_off_at)
        .where(Conversation.state == S.WAITING)
        .order_by(priority_rank_sql(Conversation.priority), Conversation.handed_off_at.is_(None),
                  Conversation.handed_off_at, Conversation.id)
        .limit(limit))
    return [QueueItem(int(i), p, at) for i, p, at in rows.all()]


async def auto_assign(*, sessionmaker: async_sessionmaker[AsyncSession], agents: Assigner, strategy: Strategy,
                      default_cap: int) -> list[tuple[int, str]]:
    """One round; returns the (conversation, agent) pairs assigned ([] if another worker's round is on)."""
    bind = sessionmaker.kw.get("bind")
    if bind is None or bind.dialect.name != "postgresql":
        return await _round(sessionmaker, agents, strategy, default_cap)
    async with sessionmaker() as lock, lock.begin():
        got = (await lock.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ROUND_LOCK})).scalar_one()
        if not got:
            return []
        return await _round(sessionmaker, agents, strategy, default_cap)


async def _round(sessionmaker: async_sessionmaker[AsyncSession], assigner: Assigner, strategy: Strategy,
                 default_cap: int) -> list[tuple[int, str]]:
    async with sessionmaker() as session:
        presence = [p for p in await list_presence(session) if p.status == AVAILABLE]
        if not presence:
            return []
        loads = await open_loads(session)
        queue = await waiting_queue(session)
    agents = [AgentLoad(p.agent_id, True, loads.get(p.agent_id, 0), cap=p.cap, last_assigned_at=p.last_assigned_at)
              for p in presence]
    names = {p.agent_id: p.name for p in presence}
    done: list[tuple[int, str]] = []
    for conv_id, agent_id in plan_assignments(queue, agents, strategy=strategy, default_cap=default_cap):
        if not await _has_room(sessionmaker, agent_id, default_cap):
            continue  # they took one themselves, or went away, since the plan was made
        result = await assigner.assign(conv_id, user_id=agent_id, user_name=names.get(agent_id), role="agent")
        if not getattr(result, "assigned", False):
            continue  # someone took it first
        async with sessionmaker() as session, session.begin():
            row = await session.get(AgentPresence, agent_id)
            if row is not None:
                row.last_assigned_at = utcnow()
            await store.log_event(session, kind="auto_assigned", conversation_id=conv_id,
                                  data={"to": agent_id, "strategy": strategy})
        done.append((conv_id, agent_id))
    if done:
        log.info("auto-assigned %d conversation(s)", len(done))
    return done


async def _has_room(sessionmaker: async_sessionmaker[AsyncSession], agent_id: str, default_cap: int) -> bool:
    """Still available and under their cap right now (the plan was made from loads read earlier)."""
    async with sessionmaker() as session:
        row = await session.get(AgentPresence, agent_id)
        if row is None or row.status != AVAILABLE:
            return False
        cap = default_cap if row.cap is None else row.cap
        return (await open_loads(session, agent_id=agent_id)).get(agent_id, 0) < cap
