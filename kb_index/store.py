"""Queries on the KB engine's tables (keyword-only async functions, one AsyncSession per task)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kb_index.models import KBIndexVersion, KBPhrasing
from kb_index.types import Phrasing


def _key(index_dir: Path) -> str:
    return str(Path(index_dir).resolve())


async def add_phrasing(
    *,
    session: AsyncSession,
    article_id: str,
    question: str,
    negative: bool = False,
    agent_id: str | None = None,
) -> KBPhrasing:
    """Record an agent's choice (idempotent on article, question, negative). Commits."""
    question = question.strip()
    row = await session.scalar(
        select(KBPhrasing).where(
            KBPhrasing.article_id == article_id,
            KBPhrasing.question == question,
            KBPhrasing.negative == negative,
        )
    )
    if row is None:
        row = KBPhrasing(article_id=article_id, question=question, negative=negative, agent_id=agent_id)
        session.add(row)
        await session.commit()
    return row


async def list_phrasings(*, session: AsyncSession) -> list[Phrasing]:
    """Every learned phrasing, oldest first: pass to ``build_index(extra_phrasings=...)``."""
    rows = (await session.scalars(select(KBPhrasing).order_by(KBPhrasing.id))).all()
    return [Phrasing(r.article_id, r.question, r.negative) for r in rows]


async def record_version(
    *, session: AsyncSession, index_dir: Path, version: int, articles: int, rows: int, model: str
) -> KBIndexVersion:
    """Announce a published version so other processes reload (see ``current_version``). Commits."""
    row = KBIndexVersion(
        index_dir=_key(index_dir), version=version, articles=articles, rows=rows, model=model
    )
    session.add(row)
    await session.commit()
    return row


async def current_version(*, session: AsyncSession, index_dir: Path) -> int | None:
    """The newest version announced for ``index_dir`` (None: never built through the CLI)."""
    return await session.scalar(
        select(KBIndexVersion.version)
        .where(KBIndexVersion.index_dir == _key(index_dir))
        .order_by(KBIndexVersion.version.desc())
        .limit(1)
    )
