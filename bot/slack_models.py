"""The Slack desk's tables: where each conversation lives in Slack, and the suggestions it showed.

`SlackThread` is the durable conversation <-> thread mapping: it survives restarts, and a
conversation keeps its thread even if the routing rules change later (the channel is stored,
not recomputed). `SlackSuggestion` keeps the text behind each Send / Edit & send button, so a
click carries only an id.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base
from bot.messages import utcnow


class SlackThread(Base):
    __tablename__ = "slack_threads"
    __table_args__ = (
        Index("ix_slack_threads_thread", "channel_id", "thread_ts"),
        Index("ix_slack_threads_escalation", "esc_channel_id", "esc_ts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), unique=True)
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))  # None until the root card is posted
    card_ts: Mapped[str | None] = mapped_column(String(32))
    # The latest escalation card in the supervisors' channel (its thread also reaches the customer).
    esc_channel_id: Mapped[str | None] = mapped_column(String(32))
    esc_ts: Mapped[str | None] = mapped_column(String(32))
    esc_outbox_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SlackSuggestion(Base):
    __tablename__ = "slack_suggestions"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))  # the customer message it answers
    rank: Mapped[int] = mapped_column(Integer)
    article_id: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)
    confidence: Mapped[float] = mapped_column(Float)
    url: Mapped[str | None] = mapped_column(String(1000))
    sent_by: Mapped[str | None] = mapped_column(String(64))
    sent_at: Mapped[datetime | None] = mapped_column()
    feedback: Mapped[str | None] = mapped_column(String(16))  # not_helpful
    feedback_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
