"""The SLA sweep: page supervisors once per breached clock, warn agents once before a breach.

Called from the worker's idle hook every `sla_check_seconds` (`bot.app._idle`)::

    breaches = await check_sla(sessionmaker=sm, desk=parts.desk, policy=SLAPolicy.from_settings(settings))

For every open handed-off conversation (waiting / assigned / escalated) it computes both clocks
(`handoff.sla`). A running clock past its due time is paged once: an ``Event(kind="sla_breached",
data={"clock", "due_at", "started_at", ...})`` row is written in the same transaction as the desk's
page (`Desk.on_sla_breach`, which writes an outbox entry), so a crash pages either not at all (the
next sweep does it) or exactly once, and a restart never pages again. A running clock past
`warn_at` of its target (business time) gets one ``sla_warning`` event and `Desk.on_sla_warning`.
The key is (conversation, kind, clock, handoff start): a new handoff starts new clocks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.desk.base import Desk
from bot.messages import utcnow
from bot.models import Conversation, Event
from bot.models import ConversationState as S
from handoff.sla import (
    SLAClock,
    SLAPolicy,
    SLAStatus,
    business_seconds_between,
    human_duration,
    sla_for_conversation,
)

log = logging.getLogger("switchboard.sla")

BREACHED = "sla_breached"
WARNING = "sla_warning"
CLOCKS = ("first_response", "resolution")


@dataclass(frozen=True, slots=True)
class Breach:
    """One clock paged by this sweep."""

    conversation_id: int
    clock: str  # "first_response" | "resolution"
    due_at: datetime
    overdue_seconds: float
    priority: str
    state: str


def _key(kind: str, conversation_id: int, clock: str, started_at: str) -> tuple[str, int, str, str]:
    return kind, conversation_id, clock, started_at


async def _logged(session: AsyncSession, conversation_ids: Sequence[int]) -> set[tuple[str, int, str, str]]:
    """The (kind, conversation, clock, handoff start) already warned or paged."""
    if not conversation_ids:
        return set()
    rows = (await session.execute(select(Event).where(
        Event.conversation_id.in_(conversation_ids), Event.kind.in_((BREACHED, WARNING))))).scalars()
    return {_key(e.kind, int(e.conversation_id or 0), str((e.data or {}).get("clock")),
                 str((e.data or {}).get("started_at"))) for e in rows}


def _elapsed_fraction(status: SLAStatus, clock: SLAClock, policy: SLAPolicy, now: datetime) -> float:
    target = policy.target(status.priority)
    seconds = target.first_response_seconds if clock.name == "first_response" else target.resolution_seconds
    if seconds <= 0:
        return 1.0
    return business_seconds_between(status.started_at, now, policy.hours_for(status.priority)) / seconds


def _due(conv: Conversation, policy: SLAPolicy, now: datetime, warn_at: float) -> Iterable[tuple[str, SLAClock]]:
    """(kind, clock) for each running clock that is breached, or past `warn_at` of its target."""
    status = sla_for_conversation(conv, policy=policy, now=now)
    if status is None:
        return
    for clock in (status.first_response, status.resolution):
        if not clock.running:
            continue  # met (in time or late): nobody needs paging now
        if clock.breached:
            yield BREACHED, clock
        elif 0 < warn_at < 1 and _elapsed_fraction(status, clock, policy, now) >= warn_at:
            yield WARNING, clock


def clock_alerts(conv: Conversation, policy: SLAPolicy, now: datetime, warn_at: float) -> dict[str, str]:
    """{clock name: BREACHED | WARNING} for the running clocks that need attention now (the console)."""
    return {clock.name: kind for kind, clock in _due(conv, policy, now, warn_at)}


async def check_sla(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    desk: Desk,
    policy: SLAPolicy,
    now: datetime | None = None,
    warn_at: float = 0.8,
    limit: int = 1000,
) -> list[Breach]:
    """Page every newly breached clock once (and warn once before). Returns the clocks paged now.

    `now` is injectable (tests); `warn_at` is the fraction of the target (business time) after
    which agents are warned, 0 to never warn. Each page is its own transaction with the
    conversation row locked, so concurrent sweeps (several workers) page once.
    """
    now = now or utcnow()
    async with sessionmaker() as session:
        convs = await store.open_handoffs(session, states=S.HUMAN, limit=limit)
        done = await _logged(session, [c.id for c in convs])
    todo: list[tuple[int, str, str]] = []
    for conv in convs:
        started = conv.handed_off_at.isoformat() if conv.handed_off_at else ""
        for kind, clock in _due(conv, policy, now, warn_at):
            if _key(kind, conv.id, clock.name, started) not in done:
                todo.append((conv.id, kind, clock.name))
    paged: list[Breach] = []
    for conv_id, kind, clock_name in todo:
        try:
            breach = await _page(sessionmaker, desk, policy, now, warn_at, conv_id, kind, clock_name)
        except Exception:  # one conversation's failure must not stop the others; the next sweep retries
            log.exception("SLA %s for conversation %s (%s) failed", kind, conv_id, clock_name)
            continue
        if breach is not None:
            paged.append(breach)
    return paged


async def _page(
    sessionmaker: async_sessionmaker[AsyncSession], desk: Desk, policy: SLAPolicy, now: datetime,
    warn_at: float, conv_id: int, kind: str, clock_name: str,
) -> Breach | None:
    async with sessionmaker() as session, session.begin():
        # Take the conversation's write lock before looking for an earlier page: a row lock on
        # PostgreSQL, the database write lock on SQLite (whose driver only BEGINs at the first write,
        # so SELECT ... FOR UPDATE alone would let two sweeps both see "not paged yet").
        await session.execute(update(Conversation).where(Conversation.id == conv_id)
                              .values(priority=Conversation.priority).execution_options(synchronize_session=False))
        conv = await store.get_conversation(session, conversation_id=conv_id, lock=True)
        if conv.state not in S.HUMAN or conv.handed_off_at is None:
            return None
        due: dict[str, str] = {c.name: k for k, c in _due(conv, policy, now, warn_at)}
        if due.get(clock_name) != kind:
            return None  # answered or resolved since the first look
        started = conv.handed_off_at.isoformat()
        if _key(kind, conv.id, clock_name, started) in await _logged(session, [conv.id]):
            return None  # another sweep got here first
        status = sla_for_conversation(conv, policy=policy, now=now)
        assert status is not None
        clock: SLAClock = getattr(status, clock_name)
        data: dict[str, Any] = {"clock": clock_name, "due_at": clock.due_at.isoformat(), "started_at": started,
                                "priority": conv.priority, "state": conv.state}
        if kind == BREACHED:
            overdue = -clock.remaining_seconds
            await store.log_event(session, kind=BREACHED, conversation_id=conv.id,
                                  data={**data, "overdue_seconds": round(overdue, 1)})
            await desk.on_sla_breach(session, conversation=conv, clock_name=clock_name, due_at=clock.due_at,
                                     overdue_seconds=overdue)
            log.warning("SLA breached: conversation %s %s overdue by %s", conv.id, clock_name,
                        human_duration(overdue))
            return Breach(conversation_id=conv.id, clock=clock_name, due_at=clock.due_at, overdue_seconds=overdue,
                          priority=conv.priority, state=conv.state)
        await store.log_event(session, kind=WARNING, conversation_id=conv.id,
                              data={**data, "remaining_seconds": round(clock.remaining_seconds, 1)})
        await desk.on_sla_warning(session, conversation=conv, clock_name=clock_name, due_at=clock.due_at,
                                  remaining_seconds=clock.remaining_seconds)
        return None


def describe_clock(clock: SLAClock) -> str:
    """'met 10:42' / 'due in 12 min' / 'OVERDUE 1 h 5 min' (the CLI and the Slack card)."""
    if clock.met_at is not None:
        return "met late" if clock.breached else "met"
    if clock.remaining_seconds < 0:
        return f"OVERDUE {human_duration(clock.remaining_seconds)}"
    return f"due in {human_duration(clock.remaining_seconds)}"


__all__ = ["Breach", "check_sla", "clock_alerts", "human_duration", "describe_clock", "BREACHED", "WARNING"]
