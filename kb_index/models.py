"""The KB engine's tables: agents' learned phrasings and the published index versions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base
from bot.messages import utcnow


class KBPhrasing(Base):
    """A customer question an agent tied to an article (negative: marked as not answered by it)."""

    __tablename__ = "kb_phrasings"
    __table_args__ = (UniqueConstraint("article_id", "question", "negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    article_id: Mapped[str] = mapped_column(String(255), index=True)
    question: Mapped[str] = mapped_column(Text)
    negative: Mapped[bool] = mapped_column(Boolean, default=False)
    agent_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class KBIndexVersion(Base):
    """One published index version; the newest row is the one every process should serve."""

    __tablename__ = "kb_index_versions"
    __table_args__ = (Index("ix_kb_index_versions_index_dir_version", "index_dir", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    index_dir: Mapped[str] = mapped_column(String(1024))
    version: Mapped[int] = mapped_column(Integer)
    articles: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    model: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
