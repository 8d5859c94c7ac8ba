"""Retention: forget message text and delivery payloads after a while; keep what reports count.

`Retention.tick()` runs in the worker's idle hook (bot.app) at most every `RETENTION_CHECK_SECONDS`:

- RETENTION_DAYS: messages older than N days in resolved conversations get their text replaced by
  "[removed]", their encrypted original dropped and their meta reduced to what reports read
  (bot.gdpr.bare_meta); outbox payloads of finished entries that old are emptied; late CSAT replies lose
  their text. Conversations, events and CSAT scores stay, so report figures do not move.
- OUTBOX_RETENTION_DAYS: finished outbox entries (delivered, dead, cancelled) older than N days are deleted.

Each pass works in batches of RETENTION_BATCH rows, one transaction per batch, and logs counts only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.csat import LATE
from bot.gdpr import bare_event_data, bare_meta
from bot.messages import utcnow
from bot.models import Conversation, ConversationState, Event, Message, OutboxEntry, OutboxStatus
from bot.settings import Settings

log = logging.getLogger("switchboard.retention")

REMOVED = "[removed]"
PURGED = "retention"
FINISHED = (OutboxStatus.DELIVERED, OutboxStatus.DEAD, OutboxStatus.CANCELLED)
CHECK_SECONDS = 600.0
MAX_BATCHES = 20  # per tick: the worker goes back to deliveries in between


@dataclass
class Purged:
    messages: int = 0
    payloads: int = 0
    events: int = 0
    outbox_deleted: int = 0

    def __bool__(self) -> bool:
        return bool(self.messages or self.payloads or self.events or self.outbox_deleted)


async def purge_messages(session: AsyncSession, *, before: datetime, batch: int) -> int:
    stmt = (select(Message).join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.created_at < before, Message.text != REMOVED,
                   Conversation.state == ConversationState.RESOLVED)
            .order_by(Message.id).limit(batch))
    rows = list((await session.execute(stmt)).scalars())
    for m in rows:
        m.text, m.sealed_text, m.meta = REMOVED, None, bare_meta(m.meta)
    return len(rows)


async def purge_payloads(session: AsyncSession, *, before: datetime, batch: int) -> int:
    # `claimed_by` means nothing once an entry is finished: it marks the payloads already emptied.
    stmt = (select(OutboxEntry).where(OutboxEntry.created_at < before, OutboxEntry.status.in_(FINISHED),
                                      or_(OutboxEntry.claimed_by.is_(None), OutboxEntry.claimed_by != PURGED))
            .order_by(OutboxEntry.id).limit(batch))
    rows = list((await session.execute(stmt)).scalars())
    for o in rows:
        o.payload, o.last_error, o.claimed_by = {}, None, PURGED
    return len(rows)


async def purge_events(session: AsyncSession, *, before: datetime, batch: int) -> int:
    stmt = select(Event).where(Event.kind == LATE, Event.at < before).order_by(Event.id)
    rows = [e for e in (await session.execute(stmt.limit(batch * 4))).scalars() if "text" in (e.data or {})][:batch]
    for e in rows:
        e.data = bare_event_data(e.data)
    return len(rows)


async def delete_outbox(session: AsyncSession, *, before: datetime, batch: int) -> int:
    ids = list((await session.execute(select(OutboxEntry.id).where(
        OutboxEntry.created_at < before, OutboxEntry.status.in_(FINISHED)).order_by(OutboxEntry.id).limit(batch)
    )).scalars())
    if ids:
        await session.execute(delete(OutboxEntry).where(OutboxEntry.id.in_(ids)))
    return len(ids)


class Retention:
    def __init__(self, *, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.days = settings.retention_days
        self.outbox_days = settings.outbox_retention_days
        self.batch = max(1, settings.retention_batch)
        self.sessionmaker = sessionmaker
        self._last = float("-inf")

    @property
    def enabled(self) -> bool:
        return self.days > 0 or self.outbox_days > 0

    async def tick(self, *, now_s: float) -> Purged | None:
        """Run a pass if one is due (`now_s`: the event loop's clock)."""
        if not self.enabled or now_s - self._last < CHECK_SECONDS:
            return None
        self._last = now_s
        try:
            return await self.run()
        except Exception:  # the next pass tries again; deliveries and the other chores go on
            log.exception("retention pass failed")
            return None

    async def run(self, *, now: datetime | None = None) -> Purged:
        """Purge everything due, batch by batch (bounded per call); logs counts, never text."""
        now = now or utcnow()
        total = Purged()
        steps = []
        if self.days > 0:
            cutoff = now - timedelta(days=self.days)
            steps += [("messages", purge_messages, cutoff), ("payloads", purge_payloads, cutoff),
                      ("events", purge_events, cutoff)]
        if self.outbox_days > 0:
            steps.append(("outbox_deleted", delete_outbox, now - timedelta(days=self.outbox_days)))
        for name, step, cutoff in steps:
            for _ in range(MAX_BATCHES):
                async with self.sessionmaker() as session, session.begin():
                    n = await step(session, before=cutoff, batch=self.batch)
                if n:
                    setattr(total, name, getattr(total, name) + n)
                    log.info("retention: %s %d rows older than %s", name, n, cutoff.date().isoformat())
                if n < self.batch:
                    break
        return total
