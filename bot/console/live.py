"""Live console updates: "conversation N changed" fans out to every open console page.

    broadcaster = make_broadcaster(settings.redis_url)
    desk = LiveDesk(desk, broadcaster)                     # every desk hook marks its conversation
    async with broadcaster.subscribe() as inbox: ...       # the SSE stream of one page

A desk hook runs inside the pipeline's transaction, so `LiveDesk` only marks the conversation on the
session; the change is announced after that transaction commits (a rolled-back change is never
announced, and a page that re-reads on the event sees the committed rows). Without Redis the
announcement reaches this process's pages; with ``REDIS_URL`` it goes through Redis pub/sub, as web
chat's `channels.webchat_hub.RedisHub` does, so a change made by a worker or another web process
reaches every page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.desk.base import Desk
from bot.models import Conversation, Message
from kb_index.types import Hit

log = logging.getLogger("switchboard.console.live")
CHANNEL = "switchboard:console"
_INFO_KEY = "console_live"


class Broadcaster(Protocol):
    def announce(self, conversation_ids: Sequence[int]) -> None:
        """Fire and forget: tell every page these conversations changed."""

    def subscribe(self) -> contextlib.AbstractAsyncContextManager[asyncio.Queue[int]]: ...

    async def aclose(self) -> None: ...


class LocalBroadcaster:
    """This process's pages: one bounded queue per open stream (a slow page drops, never blocks)."""

    def __init__(self, *, queue_size: int = 256) -> None:
        self._queues: set[asyncio.Queue[int]] = set()
        self._size = queue_size

    def dispatch(self, conversation_ids: Sequence[int]) -> None:
        for q in list(self._queues):
            for cid in conversation_ids:
                with contextlib.suppress(asyncio.QueueFull):
                    q.put_nowait(cid)

    def announce(self, conversation_ids: Sequence[int]) -> None:
        self.dispatch(conversation_ids)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[int]]:
        q: asyncio.Queue[int] = asyncio.Queue(self._size)
        self._queues.add(q)
        try:
            yield q
        finally:
            self._queues.discard(q)

    @property
    def listeners(self) -> int:
        return len(self._queues)

    async def aclose(self) -> None:
        for q in list(self._queues):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait(-1)  # ends the streams


class RedisBroadcaster:
    """Publishes to one Redis channel; one pub/sub reader per process feeds the local pages."""

    def __init__(self, url: str, *, channel: str = CHANNEL, timeout: float = 5.0) -> None:
        import redis.asyncio as aioredis  # noqa: PLC0415 optional: redis loads only when REDIS_URL is set

        self._redis = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._channel = channel
        self._timeout = timeout
        self._local = LocalBroadcaster()
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = asyncio.Event()

    def announce(self, conversation_ids: Sequence[int]) -> None:
        task = asyncio.get_running_loop().create_task(self._publish(list(conversation_ids)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, ids: list[int]) -> None:
        try:
            await asyncio.wait_for(self._redis.publish(self._channel, json.dumps(ids)), self._timeout)
        except Exception as exc:  # a page missing one update re-reads on the next; never fail the action
            log.warning("console update not published to Redis: %s", type(exc).__name__)
            self._local.dispatch(ids)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[int]]:
        if self._reader is None or self._reader.done():
            self._ready.clear()
            self._reader = asyncio.get_running_loop().create_task(self._read())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), self._timeout)
        async with self._local.subscribe() as q:
            yield q

    async def _read(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await asyncio.wait_for(pubsub.subscribe(self._channel), self._timeout)
                self._ready.set()
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is None or msg.get("type") != "message":
                        continue
                    with contextlib.suppress(ValueError, TypeError):
                        self._local.dispatch([int(i) for i in json.loads(msg["data"])])
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            except Exception:
                log.exception("console pub/sub read failed; retrying")
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(1.0)

    async def aclose(self) -> None:
        await self._local.aclose()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        await self._redis.aclose()


def make_broadcaster(redis_url: str | None) -> Broadcaster:
    return RedisBroadcaster(redis_url) if redis_url else LocalBroadcaster()


# ---- announcing after commit ---------------------------------------------------------------------


def mark_changed(session: AsyncSession, broadcaster: Broadcaster, conversation_id: int) -> None:
    """Announce `conversation_id` once `session`'s transaction commits (nothing on rollback)."""
    pending = session.sync_session.info.setdefault(_INFO_KEY, {})
    pending.setdefault(id(broadcaster), (broadcaster, set()))[1].add(conversation_id)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending = session.info.pop(_INFO_KEY, None)
    if not pending:
        return
    for broadcaster, ids in pending.values():
        try:
            broadcaster.announce(sorted(ids))
        except Exception:  # never let a page update break the committed action
            log.exception("console update not announced")


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_INFO_KEY, None)


class LiveDesk:
    """A `Desk` that passes every hook to the real desk and marks the conversation as changed."""

    def __init__(self, inner: Desk, broadcaster: Broadcaster) -> None:
        self.inner = inner
        self.broadcaster = broadcaster

    def __getattr__(self, name: str) -> Any:  # the Slack desk's own methods (is_supervisor, ...)
        return getattr(self.inner, name)

    async def on_customer_message(self, session: AsyncSession, *, conversation: Conversation, message: Message,
                                  hits: Sequence[Hit], decision: Any) -> None:
        mark_changed(session, self.broadcaster, conversation.id)
        await self.inner.on_customer_message(session, conversation=conversation, message=message, hits=hits,
                                             decision=decision)

    async def on_outbound(self, session: AsyncSession, *, conversation: Conversation, message: Message) -> None:
        mark_changed(session, self.broadcaster, conversation.id)
        await self.inner.on_outbound(session, conversation=conversation, message=message)

    async def on_state_change(self, session: AsyncSession, *, conversation: Conversation, old: str, new: str,
                              reason: str | None) -> None:
        mark_changed(session, self.broadcaster, conversation.id)
        await self.inner.on_state_change(session, conversation=conversation, old=old, new=new, reason=reason)

    async def on_delivery_problem(self, session: AsyncSession, *, conversation: Conversation,
                                  message: Message) -> None:
        mark_changed(session, self.broadcaster, conversation.id)
        await self.inner.on_delivery_problem(session, conversation=conversation, message=message)

    async def on_sla_breach(self, session: AsyncSession, *, conversation: Conversation, clock_name: str,
                            due_at: datetime, overdue_seconds: float) -> None:
        mark_changed(session, self.broadcaster, conversation.id)
        await self.inner.on_sla_breach(session, conversation=conversation, clock_name=clock_name, due_at=due_at,
                                       overdue_seconds=overdue_seconds)

    async def on_sla_warning(self, session: AsyncSession, *, conversation: Conversation, clock_name: str,
                             due_at: datetime, remaining_seconds: float) -> None:
        mark_changed(session, self.broadcaster, conversation.id)
        await self.inner.on_sla_warning(session, conversation=conversation, clock_name=clock_name, due_at=due_at,
                                        remaining_seconds=remaining_seconds)


__all__ = ["Broadcaster", "LocalBroadcaster", "RedisBroadcaster", "make_broadcaster", "mark_changed", "LiveDesk"]
