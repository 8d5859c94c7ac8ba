"""Agents' availability for auto-assignment: available or away, with an optional per-agent cap."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base
from bot.messages import utcnow


class AgentPresence(Base):
    __tablename__ = "agent_presence"

    agent_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="away")  # available | away
    cap: Mapped[int | None] = mapped_column(Integer)  # None: the AUTO_ASSIGN_CAP setting
    last_assigned_at: Mapped[datetime | None] = mapped_column()  # round robin: longest-waiting first
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
