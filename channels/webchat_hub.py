"""Fan-out of web chat events to every socket a session has open (several tabs, several processes).

A hub carries small JSON-able dicts ("events") addressed to a session id. `LocalHub` keeps the
subscribers in this process; `RedisHub` publishes through Redis pub/sub so a message sent by a
worker (or another web process) reaches a socket held by any web process.

Example::

    hub = LocalHub()
    async with hub.subscribe("s1") as inbox:
        await hub.publish("s1", {"type": "message", "text": "hi"})
        event = await inbox.get()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from channels.base import TransientSendError

log = logging.getLogger("switchboard.webchat.hub")

Event = dict[str, Any]

# An event that tells a subscriber its queue overflowed: the socket is closed so that the widget
# reconnects and resumes from the stored history (nothing is lost, it is only re-read).
OVERFLOW: Event = {"type": "_overflow"}
# An event that tells every subscriber the hub itself may have missed events (the Redis pub/sub
# connection dropped): the socket is closed too, and the widget's resume reads what was missed.
RESYNC: Event = {"type": "_resync"}


class Inbox:
    """One subscriber's bounded queue of events."""

    def __init__(self, maxsize: int = 256) -> None:
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.overflowed = False

    def put(self, event: Event) -> None:
        if self.overflowed:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
            self._queue.put_nowait(OVERFLOW)

    async def get(self) -> Event:
        return await self._queue.get()


class Hub(Protocol):
    """Where `WebChatChannel.send` publishes and each websocket subscribes."""

    async def publish(self, session_id: str, event: Event) -> int:
        """Deliver `event` to the session's subscribers; returns how many receivers got it (best effort)."""
        ...

    def subscribe(self, session_id: str) -> contextlib.AbstractAsyncContextManager[Inbox]: ...

    async def aclose(self) -> None: ...


class LocalHub:
    """In-process fan-out (the default: one web process that also runs the delivery worker)."""

    def __init__(self, *, inbox_size: int = 256) -> None:
        self._subs: dict[str, set[Inbox]] = {}
        self._inbox_size = inbox_size

    async def publish(self, session_id: str, event: Event) -> int:
        return self.dispatch(session_id, event)

    def dispatch(self, session_id: str, event: Event) -> int:
        inboxes = self._subs.get(session_id, ())
        for inbox in list(inboxes):
            inbox.put(event)
        return len(inboxes)

    def dispatch_all(self, event: Event) -> int:
        inboxes = [inbox for subs in self._subs.values() for inbox in subs]
        for inbox in inboxes:
            inbox.put(event)
        return len(inboxes)

    def has_subscribers(self, session_id: str) -> bool:
        return bool(self._subs.get(session_id))

    @contextlib.asynccontextmanager
    async def subscribe(self, session_id: str) -> AsyncIterator[Inbox]:
        inbox = Inbox(self._inbox_size)
        self._subs.setdefault(session_id, set()).add(inbox)
        try:
            yield inbox
        finally:
            subs = self._subs.get(session_id)
            if subs is not None:
                subs.discard(inbox)
                if not subs:
                    del self._subs[session_id]

    async def aclose(self) -> None:
        self._subs.clear()


class RedisHub:
    """Fan-out through Redis pub/sub, one channel per session (``<prefix><session id>``).

    One pub/sub connection per process; a session's Redis channel is subscribed while at least
    one local socket is open for it. Publishing works from any process (web or worker).

    `subscribe` returns only once Redis has confirmed the subscription, so whatever is published
    after it (and after the socket's resume has read the database) reaches the socket. Redis keeps
    nothing for a subscriber that is away: when the pub/sub connection fails, every local
    subscriber gets `RESYNC` (its socket closes, the widget reconnects and resumes).
    """

    def __init__(self, url: str, *, prefix: str = "switchboard:web:", timeout: float = 5.0) -> None:
        import redis.asyncio as aioredis  # noqa: PLC0415 optional: redis loads only when REDIS_URL is set

        self._redis = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._prefix = prefix
        self._timeout = timeout
        self._local = LocalHub()
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._confirming: dict[str, list[asyncio.Future[None]]] = {}

    async def publish(self, session_id: str, event: Event) -> int:
        from redis.exceptions import RedisError  # noqa: PLC0415 optional: redis loads only when REDIS_URL is set

        data = json.dumps(event, separators=(",", ":"))
        try:
            receivers = await asyncio.wait_for(self._redis.publish(self._prefix + session_id, data), self._timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            raise TransientSendError(f"redis publish failed: {exc}", retry_after=1.0) from exc
        return int(receivers)

    @contextlib.asynccontextmanager
    async def subscribe(self, session_id: str) -> AsyncIterator[Inbox]:
        try:
            async with self._local.subscribe(session_id) as inbox:
                await self._ensure_subscribed(session_id)
                yield inbox
        finally:
            if not self._local.has_subscribers(session_id):
                with contextlib.suppress(Exception):
                    async with self._lock:
                        if not self._local.has_subscribers(session_id) and self._pubsub is not None:
                            await asyncio.wait_for(
                                self._pubsub.unsubscribe(self._prefix + session_id), self._timeout
                            )

    async def _ensure_subscribed(self, session_id: str) -> None:
        channel = self._prefix + session_id
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirming.setdefault(channel, []).append(confirmed)
        try:
            async with self._lock:
                if self._pubsub is None:
                    self._pubsub = self._redis.pubsub()
                await asyncio.wait_for(self._pubsub.subscribe(channel), self._timeout)
                if self._reader is None or self._reader.done():
                    self._reader = asyncio.get_running_loop().create_task(self._read())
            await asyncio.wait_for(confirmed, self._timeout)  # the reader sees Redis's "subscribe" reply
        finally:
            waiting = self._confirming.get(channel, [])
            if confirmed in waiting:
                waiting.remove(confirmed)
            if not waiting:
                self._confirming.pop(channel, None)

    def _confirmed(self, channel: str) -> None:
        """Redis answers each SUBSCRIBE in order: the oldest waiter for the channel is the one answered."""
        waiting = self._confirming.get(channel)
        if waiting:
            fut = waiting.pop(0)
            if not fut.done():
                fut.set_result(None)

    async def _read(self) -> None:
        while True:
            try:
                msg = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                # Whatever was published meanwhile is gone: every local socket resumes from the database.
                log.exception("redis pub/sub read failed; local sockets resume, retrying")
                self._local.dispatch_all(RESYNC)
                await asyncio.sleep(1.0)
                continue
            if msg is None:
                continue
            channel = msg["channel"].decode() if isinstance(msg["channel"], bytes) else msg["channel"]
            if msg.get("type") == "subscribe":
                self._confirmed(channel)
                continue
            if msg.get("type") != "message":
                continue
            try:
                event = json.loads(msg["data"])
            except ValueError:
                continue
            self._local.dispatch(channel[len(self._prefix):], event)

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        await self._local.aclose()
        await self._redis.aclose()
