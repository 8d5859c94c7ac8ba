"""The delivery worker: sends what the outbox owes, with retries, backoff and a dead-letter state.

Claiming is one atomic ``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING``:
on PostgreSQL two workers never claim the same row; on SQLite the single writer lock gives the
same guarantee. An entry is only claimable when no earlier entry with the same `order_key` is
still owed, so one customer's replies go out strictly in order. A claimed entry carries a lease:
if its worker dies, the entry becomes claimable again when the lease runs out, and that reclaim
counts as an attempt (so `attempts > 0` tells a deliverer a platform may already have the message).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import and_, case, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot import metrics
from bot.messages import Address, OutboundMessage, SendResult, utcnow
from bot.models import Message, OutboxEntry, OutboxStatus
from bot.settings import Settings
from bot.sms_outbox import cancel_later_parts
from channels.base import Channel, PermanentSendError, TransientSendError

log = logging.getLogger("switchboard.worker")


class Deliverer(Protocol):
    """Sends one outbox entry. Raises `TransientSendError` (retry) or `PermanentSendError` (dead)."""

    async def deliver(self, entry: OutboxEntry) -> SendResult: ...


class ChannelDeliverer:
    """Delivers customer messages through a customer channel's `send`."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    async def deliver(self, entry: OutboxEntry) -> SendResult:
        p = entry.payload
        return await self.channel.send(
            Address(entry.channel, p["to"]),
            OutboundMessage(
                text=p["text"],
                message_id=entry.message_id,
                conversation_id=entry.conversation_id,
                author_kind=p.get("author_kind", "bot"),
                author_name=p.get("author_name"),
                meta=p.get("meta") or {},
            ),
        )


@dataclass(frozen=True, slots=True)
class Backoff:
    initial: float = 1.0
    maximum: float = 300.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with full jitter; never sooner than the platform's Retry-After."""
        ceiling = min(self.maximum, self.initial * (2 ** max(0, attempt - 1)))
        delay = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay


FailureHook = Callable[[AsyncSession, OutboxEntry, Exception], Awaitable[None]]


class Worker:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        deliverers: dict[str, Deliverer],
        on_failure: FailureHook | None = None,
        worker_id: str | None = None,
        batch_size: int = 32,
        concurrency: int = 16,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.settings = settings
        self.deliverers = deliverers
        self.on_failure = on_failure
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.batch_size = batch_size
        self.backoff = Backoff(settings.outbox_backoff_initial, settings.outbox_backoff_max)
        self._semaphore = asyncio.Semaphore(concurrency)
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        self._wakeup.set()

    async def run(self, stop: asyncio.Event, *, on_idle: Callable[[], Awaitable[None]] | None = None) -> None:
        """Deliver until `stop` is set. Wakes on `wake()` or every `outbox_poll_seconds`."""
        while not stop.is_set():
            try:
                while await self.run_once():
                    if stop.is_set():
                        return
                if on_idle is not None:
                    await on_idle()
            except Exception:
                log.exception("worker loop error; continuing")
            self._wakeup.clear()
            waiter = asyncio.ensure_future(self._wakeup.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait(
                {waiter, stopper}, timeout=self.settings.outbox_poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            waiter.cancel()
            stopper.cancel()

    async def run_once(self) -> int:
        """Claim a batch and deliver it. Returns how many entries were attempted."""
        entries = await self.claim(self.batch_size)
        if entries:
            await asyncio.gather(*(self._deliver_one(e) for e in entries))
        return len(entries)

    async def claim(self, limit: int) -> list[OutboxEntry]:
        now = utcnow()
        earlier = aliased(OutboxEntry)
        blocked = exists().where(
            and_(
                earlier.order_key == OutboxEntry.order_key,
                earlier.id < OutboxEntry.id,
                earlier.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
            )
        )
        due = or_(
            and_(OutboxEntry.status == OutboxStatus.PENDING, OutboxEntry.next_attempt_at <= now),
            and_(OutboxEntry.status == OutboxStatus.SENDING, OutboxEntry.lease_until < now),
        )
        candidates = (
            select(OutboxEntry.id)
            .where(due, ~blocked, OutboxEntry.channel.in_(list(self.deliverers)))
            .order_by(OutboxEntry.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        lease = now + timedelta(seconds=self.settings.outbox_lease_seconds)
        stmt = (
            update(OutboxEntry)
            .where(OutboxEntry.id.in_(candidates.scalar_subquery()))
            # An entry whose lease ran out was being sent by a worker that died: that counts as an
            # attempt, so deliverers know to look the message up at the platform before resending.
            .values(status=OutboxStatus.SENDING, lease_until=lease, claimed_by=self.worker_id,
                    attempts=case((OutboxEntry.status == OutboxStatus.SENDING, OutboxEntry.attempts + 1),
                                  else_=OutboxEntry.attempts))
            .returning(OutboxEntry)
            .execution_options(synchronize_session=False)
        )
        async with self.sessionmaker() as session, session.begin():
            rows = list((await session.execute(stmt)).scalars())
        return sorted(rows, key=lambda e: e.id)

    async def _deliver_one(self, entry: OutboxEntry) -> None:
        deliverer = self.deliverers[entry.channel]
        async with self._semaphore:
            try:
                result = await asyncio.wait_for(deliverer.deliver(entry), timeout=self.settings.send_timeout + 5)
            except TransientSendError as exc:
                await self._failed(entry, exc, retry_after=exc.retry_after, permanent=False)
            except PermanentSendError as exc:
                await self._failed(entry, exc, retry_after=None, permanent=True)
            except (TimeoutError, OSError) as exc:
                await self._failed(entry, exc, retry_after=None, permanent=False)
            except Exception as exc:  # a bug in a deliverer: retry, but keep the traceback
                log.exception("deliverer %s crashed on entry %s", entry.channel, entry.id)
                await self._failed(entry, exc, retry_after=None, permanent=False)
            else:
                await self._delivered(entry, result)

    async def _delivered(self, entry: OutboxEntry, result: SendResult) -> None:
        now = utcnow()
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id == entry.id, OutboxEntry.claimed_by == self.worker_id)
                .values(status=OutboxStatus.DELIVERED, delivered_at=now, platform_id=result.platform_id,
                        attempts=OutboxEntry.attempts + 1, lease_until=None, last_error=None)
            )
            if entry.message_id is not None and entry.kind == "message":
                values: dict[str, object] = {"delivery_status": result.status}
                if result.platform_id:
                    values["platform_id"] = result.platform_id
                await session.execute(update(Message).where(Message.id == entry.message_id).values(**values))
        metrics.record_delivery(entry.channel, "delivered", created_at=entry.created_at)  # ops hook
        log.info("delivered", extra={"outbox_id": entry.id, "message_id": entry.message_id,
                                     "conversation_id": entry.conversation_id, "channel": entry.channel})

    async def _failed(
        self, entry: OutboxEntry, exc: Exception, *, retry_after: float | None, permanent: bool
    ) -> None:
        attempts = entry.attempts + 1
        dead = permanent or attempts >= self.settings.outbox_max_attempts
        next_at: datetime = utcnow() + timedelta(seconds=self.backoff.delay(attempts, retry_after))
        error = f"{type(exc).__name__}: {exc}"[:2000]
        log.warning("delivery of outbox %s failed (attempt %s%s): %s", entry.id, attempts,
                    ", dead-lettered" if dead else "", error)
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(OutboxEntry)
                .where(OutboxEntry.id == entry.id, OutboxEntry.claimed_by == self.worker_id)
                .values(
                    status=OutboxStatus.DEAD if dead else OutboxStatus.PENDING,
                    attempts=attempts,
                    next_attempt_at=next_at,
                    lease_until=None,
                    last_error=error,
                )
            )
            if dead and entry.message_id is not None and entry.kind == "message":
                code = getattr(exc, "code", None)
                await session.execute(
                    update(Message).where(Message.id == entry.message_id)
                    .values(delivery_status="failed", error_code=str(code) if code is not None else None)
                )
            if dead:
                await cancel_later_parts(session, entry)  # ops hook: no tail of a split SMS alone
            if dead and self.on_failure is not None:
                await self.on_failure(session, entry, exc)
        metrics.record_delivery(entry.channel, "dead" if dead else "retry", permanent=permanent)  # ops hook


async def retry_dead(session: AsyncSession, *, entry_ids: list[int] | None = None) -> int:
    """Put dead-lettered entries back in the queue (all, or the given ids)."""
    stmt = (
        update(OutboxEntry)
        .where(OutboxEntry.status == OutboxStatus.DEAD)
        .values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=utcnow(), last_error=None)
    )
    if entry_ids:
        stmt = stmt.where(OutboxEntry.id.in_(entry_ids))
    result = await session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = ["Backoff", "ChannelDeliverer", "Deliverer", "Worker", "retry_dead"]
