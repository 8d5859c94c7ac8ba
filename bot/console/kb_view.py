"""What the knowledge-base page shows: how often each article was served, rated 👎, or followed by a
handoff (from the event log), and the clusters of questions the bot could not answer (`kb gaps`)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import utcnow
from bot.models import Event
from bot.report_metrics import lexical_clusters
from bot.store import unanswered_questions
from kb_index.gaps import gaps as embedding_gaps

HANDOFFS = ("handed_off", "escalated")


@dataclass(frozen=True, slots=True)
class ArticleStats:
    article_id: str
    served: int
    downvoted: int
    handed_off_after: int


@dataclass(frozen=True, slots=True)
class GapCluster:
    size: int
    label: str
    examples: list[str]


async def article_stats(session: AsyncSession, *, article_ids: list[str], since: datetime) -> list[ArticleStats]:
    """Per article since `since`: bot answers with it, 👎 on those answers, and handoffs whose last bot
    answer before them (same conversation) was this article."""
    events = (await session.scalars(select(Event).where(
        Event.at >= since, Event.kind.in_(("bot_answered", "bot_answer_rated", *HANDOFFS)))
        .order_by(Event.conversation_id, Event.id))).all()
    served: Counter[str] = Counter()
    down: Counter[str] = Counter()
    after: Counter[str] = Counter()
    last: dict[int | None, str] = {}
    for e in events:
        data = e.data or {}
        if e.kind == "bot_answered" and data.get("article_id"):
            served[str(data["article_id"])] += 1
            last[e.conversation_id] = str(data["article_id"])
        elif e.kind == "bot_answer_rated" and data.get("helpful") is False and data.get("article_id"):
            down[str(data["article_id"])] += 1
        elif e.kind in HANDOFFS and e.conversation_id in last:
            after[last.pop(e.conversation_id)] += 1
    ids = list(dict.fromkeys([*article_ids, *served, *down, *after]))
    rows = [ArticleStats(a, served[a], down[a], after[a]) for a in ids]
    return sorted(rows, key=lambda r: (-r.served, r.article_id))


async def gap_clusters(session: AsyncSession, *, kb: Any, limit: int = 500, top: int = 15) -> list[GapCluster]:
    """`switchboard kb gaps` over the latest unanswered questions: clustered with the KB's own
    embedder in a thread, or by shared words when the KB has none."""
    questions = await unanswered_questions(session=session, limit=limit)
    if not questions:
        return []
    embedder = getattr(kb, "embedder", None)
    if embedder is not None:
        found = await asyncio.to_thread(embedding_gaps, questions, embedder=embedder)
        return [GapCluster(g.size, g.label, list(g.examples)) for g in found[:top]]
    return [GapCluster(n, label, list(ex)[:5]) for label, n, ex in lexical_clusters(questions)[:top]]


def stats_since(days: int = 30) -> datetime:
    return utcnow() - timedelta(days=days)


__all__ = ["ArticleStats", "GapCluster", "article_stats", "gap_clusters", "stats_since"]
