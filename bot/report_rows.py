"""The plain rows reports are computed from, and the one query that loads them.

`bot.report_metrics` computes every figure from these rows with pure functions, so the CLI,
Slack `/switchboard report` and the supervisor console share one code path:

    rows = await load_rows(session, since=since, until=until, channel="sms")
    report = compute_report(rows, since=since, until=until, now=utcnow(), policy=policy)

A conversation is loaded when it was created in the window or has any event in it; all of its
events are loaded (whenever they happened), because a figure such as "reopened within 24 h"
needs the history on both sides of the window's edges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.csat_models import CsatSurvey
from bot.models import Conversation, Event, Message
from kb_index.types import KbRecord

CHUNK = 500


@dataclass(frozen=True, slots=True)
class ConversationRow:
    id: int
    channel: str
    customer_id: int
    created_at: datetime
    state: str
    priority: str = "normal"


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    conversation_id: int
    kind: str
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SurveyRow:
    """One CSAT survey: sent (or not yet), answered (score 1..5) or not."""

    conversation_id: int
    channel: str
    sent_at: datetime | None
    score: int | None = None
    answered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class QuestionRow:
    """A customer message the bot could not answer confidently (`KbRecord.missed`)."""

    conversation_id: int
    at: datetime
    text: str


@dataclass(frozen=True, slots=True)
class ReportRows:
    conversations: Sequence[ConversationRow]
    events: Sequence[EventRow]
    surveys: Sequence[SurveyRow] = ()
    questions: Sequence[QuestionRow] = ()
    open_states: Sequence[tuple[str, str]] = ()  # (channel, state) of every conversation now


def aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]


async def load_rows(
    session: AsyncSession, *, since: datetime, until: datetime, channel: str | None = None
) -> ReportRows:
    """Every row the report for [since, until) needs (optionally one channel)."""
    touched = select(Event.conversation_id).where(Event.at >= since, Event.at < until,
                                                  Event.conversation_id.is_not(None))
    stmt = select(Conversation).where(or_(
        (Conversation.created_at >= since) & (Conversation.created_at < until),
        Conversation.id.in_(touched),
    ))
    if channel:
        stmt = stmt.where(Conversation.channel == channel)
    convs = [
        ConversationRow(id=c.id, channel=c.channel, customer_id=c.customer_id, created_at=aware(c.created_at),
                        state=c.state, priority=c.priority or "normal")
        for c in (await session.execute(stmt)).scalars()
    ]
    ids = [c.id for c in convs]
    events: list[EventRow] = []
    questions: list[QuestionRow] = []
    for part in _chunks(ids):
        for e in (await session.execute(select(Event).where(Event.conversation_id.in_(part)))).scalars():
            events.append(EventRow(id=e.id, conversation_id=int(e.conversation_id or 0), kind=e.kind,
                                   at=aware(e.at), data=dict(e.data or {})))
        msgs = await session.execute(select(Message).where(
            Message.conversation_id.in_(part), Message.direction == "in",
            Message.created_at >= since, Message.created_at < until))
        for m in msgs.scalars():
            kb = KbRecord.from_meta(m.meta, text=m.text)
            if kb is not None and kb.missed:
                questions.append(QuestionRow(conversation_id=m.conversation_id, at=aware(m.created_at),
                                             text=kb.query))
    surveys = await _load_surveys(session, ids)
    state_stmt = select(Conversation.channel, Conversation.state)
    if channel:
        state_stmt = state_stmt.where(Conversation.channel == channel)
    states = [(str(ch), str(st)) for ch, st in (await session.execute(state_stmt)).all()]
    return ReportRows(conversations=convs, events=events, surveys=surveys, questions=questions, open_states=states)


async def _load_surveys(session: AsyncSession, ids: Sequence[int]) -> list[SurveyRow]:
    out: list[SurveyRow] = []
    for part in _chunks(ids):
        for s in (await session.execute(select(CsatSurvey).where(CsatSurvey.conversation_id.in_(part)))).scalars():
            out.append(SurveyRow(conversation_id=s.conversation_id, channel=s.channel,
                                 sent_at=aware(s.sent_at) if s.sent_at else None, score=s.score,
                                 answered_at=aware(s.answered_at) if s.answered_at else None))
    return out
