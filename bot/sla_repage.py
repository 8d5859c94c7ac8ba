"""Re-page breached SLA clocks every `SLA_REPAGE_MINUTES` until someone takes the conversation.

`bot.sla_watch` pages a breached clock once. While the conversation is still nobody's (waiting,
or escalated and not yet taken by a supervisor) and the clock is still running, this sweep pages
again each time `every` has passed since the last page: an ``Event(kind="sla_repaged",
data={"clock", "started_at", "due_at", "page": n})`` row in the same transaction as the desk's page,
with the conversation row locked, so two workers never page the same interval twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.desk.base import Desk
from bot.messages import utcnow
from bot.models import Conversation, Event
from bot.models import ConversationState as S
from bot.sla_watch import BREACHED
from handoff.sla import SLAPolicy, sla_for_conversation

log = logging.getLogger("switchboard.sla")

REPAGED = "sla_repaged"
UNTAKEN = (S.WAITING, S.ESCALATED)


async def _last_pages(session: AsyncSession, conversation_id: int, started_at: str) -> dict[str, tuple[datetime, int]]:
    """clock -> (time of the latest page, pages so far) for this handoff."""
    out: dict[str, tuple[datetime, int]] = {}
    rows = (await session.execute(select(Event).where(
        Event.conversation_id == conversation_id, Event.kind.in_((BREACHED, REPAGED))).order_by(Event.at))).scalars()
    for e in rows:
        data = e.data or {}
        if str(data.get("started_at")) != started_at:
            continue
        clock = str(data.get("clock"))
        _, n = out.get(clock, (e.at, 0))
        out[clock] = (e.at, n + 1)
    return out


async def repage_breaches(
    *, sessionmaker: async_sessionmaker[AsyncSession], desk: Desk, policy: SLAPolicy, every: timedelta,
    now: datetime | None = None, limit: int = 500,
) -> list[tuple[int, str]]:
    """Page again every clock paged more than `every` ago on a conversation nobody has taken.
    Returns the (conversation, clock) pairs paged now."""
    if every <= timedelta(0):
        return []
    now = now or utcnow()
    async with sessionmaker() as session:
        ids = list((await session.execute(select(Conversation.id).where(
            Conversation.state.in_(UNTAKEN), Conversation.handed_off_at.is_not(None),
            Conversation.id.in_(select(Event.conversation_id).where(Event.kind == BREACHED)),
        ).order_by(Conversation.id).limit(limit))).scalars())
    paged: list[tuple[int, str]] = []
    for conv_id in ids:
        try:
            paged.extend(await _repage_one(sessionmaker, desk, policy, every, now, conv_id))
        except Exception:  # one conversation's failure must not stop the others
            log.exception("SLA re-page for conversation %s failed", conv_id)
    return paged


async def _repage_one(sessionmaker: async_sessionmaker[AsyncSession], desk: Desk, policy: SLAPolicy,
                      every: timedelta, now: datetime, conv_id: int) -> list[tuple[int, str]]:
    done: list[tuple[int, str]] = []
    async with sessionmaker() as session, session.begin():
        # The write lock first (see bot.sla_watch._page): concurrent sweeps then see each other's pages.
        await session.execute(update(Conversation).where(Conversation.id == conv_id)
                              .values(priority=Conversation.priority).execution_options(synchronize_session=False))
        conv = await store.get_conversation(session, conversation_id=conv_id, lock=True)
        if conv.state not in UNTAKEN or conv.handed_off_at is None:
            return done
        status = sla_for_conversation(conv, policy=policy, now=now)
        if status is None:
            return done
        started = conv.handed_off_at.isoformat()
        pages = await _last_pages(session, conv.id, started)
        for clock in (status.first_response, status.resolution):
            if not (clock.running and clock.breached) or clock.name not in pages:
                continue
            last, n = pages[clock.name]
            if now - last < every:
                continue
            overdue = -clock.remaining_seconds
            event = await store.log_event(session, kind=REPAGED, conversation_id=conv.id, data={
                "clock": clock.name, "started_at": started, "due_at": clock.due_at.isoformat(), "page": n + 1,
                "overdue_seconds": round(overdue, 1)})
            event.at = now  # the sweep's clock (injectable in tests), not the wall clock
            await desk.on_sla_breach(session, conversation=conv, clock_name=clock.name, due_at=clock.due_at,
                                     overdue_seconds=overdue)
            done.append((conv.id, clock.name))
    return done
