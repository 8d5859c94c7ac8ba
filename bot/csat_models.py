"""CSAT surveys: one per conversation, sent on the customer's own channel after a resolution."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base
from bot.messages import utcnow


class SurveyStatus:
    SCHEDULED = "scheduled"  # owed; waits for quiet hours to end
    SENT = "sent"
    ANSWERED = "answered"
    EXPIRED = "expired"  # no answer inside the window
    SUPPRESSED = "suppressed"  # never sent: opted out, or the conversation came back first

    OPEN = (SCHEDULED, SENT)


class CsatSurvey(Base):
    __tablename__ = "csat_surveys"
    __table_args__ = (Index("ix_csat_surveys_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), unique=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("channel_identities.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=SurveyStatus.SCHEDULED)
    resolved_by: Mapped[str] = mapped_column(String(16), default="person")  # person | bot
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime] = mapped_column(default=utcnow)  # not sent before (quiet hours)
    sent_at: Mapped[datetime | None] = mapped_column()
    expires_at: Mapped[datetime | None] = mapped_column()
    score: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    answered_at: Mapped[datetime | None] = mapped_column()
    reply_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
