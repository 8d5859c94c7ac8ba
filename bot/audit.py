"""The audit log: who did what to which record, and when. Every console action and every
customer export or erasure writes one row here, in the same transaction as the action itself,
so an action that rolls back leaves no entry and an entry never lacks its action."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bot.db import Base
from bot.messages import utcnow


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))  # "console:alice", "cli", "slack:U123"
    action: Mapped[str] = mapped_column(String(64))  # "reply", "resolve", "customer.export", ...
    target_kind: Mapped[str | None] = mapped_column(String(32))  # "conversation", "customer", "user"
    target_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # never message text or PII


async def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    target_kind: str | None = None,
    target_id: str | int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one entry to the caller's transaction (the caller commits it with the action)."""
    entry = AuditEntry(
        actor=actor,
        action=action,
        target_kind=target_kind,
        target_id=None if target_id is None else str(target_id),
        detail=dict(detail or {}),
    )
    session.add(entry)
    await session.flush()
    return entry


@dataclass(frozen=True, slots=True)
class Note:
    """An entry to write inside somebody else's transaction (a pipeline action run for the console):
    ``await pipeline.resolve(7, by="console:ann", audit=Note("console:ann", "resolve", "conversation", 7))``."""

    actor: str
    action: str
    target_kind: str | None = None
    target_id: str | int | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    async def write(self, session: AsyncSession) -> AuditEntry:
        return await record(session, actor=self.actor, action=self.action, target_kind=self.target_kind,
                            target_id=self.target_id, detail=self.detail)


async def recent(
    session: AsyncSession,
    *,
    limit: int = 100,
    actor: str | None = None,
    target_kind: str | None = None,
    target_id: str | int | None = None,
) -> list[AuditEntry]:
    """Newest first, optionally narrowed to one actor or one record."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if actor is not None:
        stmt = stmt.where(AuditEntry.actor == actor)
    if target_kind is not None:
        stmt = stmt.where(AuditEntry.target_kind == target_kind)
    if target_id is not None:
        stmt = stmt.where(AuditEntry.target_id == str(target_id))
    return list((await session.scalars(stmt)).all())
