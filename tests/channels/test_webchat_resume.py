"""Resume after a reconnect never skips a message: the history's cursor stays below messages written
just now (a lower id can commit after a higher one), and a socket whose hub may have missed events
is closed so the widget resumes. Loopback uvicorn, in-memory host; Redis for real when installed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from websockets.exceptions import ConnectionClosed

from bot.messages import Address, OutboundMessage, TranscriptItem, utcnow
from channels.webchat import CLOSE_RESYNC, WebChatChannel
from channels.webchat_frames import history_frame
from channels.webchat_hub import RedisHub
from tests.channels.webchat_support import Stored, web_env
from tests.fixtures.redis import redis_server_url  # noqa: F401  (the fixture)

SETTLE = timedelta(seconds=60)


def _item(id: int, age: float) -> TranscriptItem:
    return TranscriptItem(id=id, direction="out", author_kind="bot", text=f"m{id}",
                          created_at=utcnow() - timedelta(seconds=age))


def test_the_cursor_stops_below_messages_written_within_the_settle_window() -> None:
    now = utcnow()
    frame = history_frame([_item(3, 300), _item(5, 120), _item(6, 5), _item(9, 1)], after=2, more=False,
                          platform_prefix="s:", now=now, settle=SETTLE)
    assert [m["id"] for m in frame["messages"]] == [3, 5, 6, 9]
    assert frame["cursor"] == 5  # 6 and 9 are listed again next time: a lower id may still commit
    assert history_frame([_item(7, 1)], after=4, more=False, platform_prefix="s:", now=now,
                         settle=SETTLE)["cursor"] == 4  # never below `after`
    assert history_frame([], after=4, more=False, platform_prefix="s:", now=now, settle=SETTLE)["cursor"] == 4
    naive = TranscriptItem(id=8, direction="in", author_kind="customer", text="x",
                           created_at=(now - timedelta(hours=1)).replace(tzinfo=None))  # SQLite without tz
    assert history_frame([naive], after=0, more=False, platform_prefix="s:", now=now, settle=SETTLE)["cursor"] == 8


async def test_a_lower_id_that_commits_after_a_higher_one_is_listed_by_the_next_resume() -> None:
    async with web_env() as env:
        token = await env.token()
        sid = token.split(".")[1]
        to = Address("web", sid)
        host = env.host
        # id 1 is taken by a transaction that has not committed yet; id 2 commits and is pushed
        early = TranscriptItem(id=1, created_at=utcnow(), direction="out", author_kind="agent", text="agent reply")
        host._next = 2
        later_id = await host.reply(to, "bot message")
        async with env.connect(token) as c:
            await c.recv_type("ready")
            await c.send({"type": "resume", "after": 0})
            hist = await c.recv_type("history")
            assert [m["id"] for m in hist["messages"]] == [later_id] and hist["cursor"] == 0
        # the reply commits while the socket is down: pushed to nobody, the outbox is done
        host.messages.insert(0, Stored(early, to))
        assert (await env.channel.send(to, OutboundMessage("agent reply", message_id=1, author_kind="agent"))
                ).status == "sent"
        async with env.connect(token) as c:
            await c.recv_type("ready")
            await c.send({"type": "resume", "after": hist["cursor"]})
            hist = await c.recv_type("history")
            assert [m["id"] for m in hist["messages"]] == [1, later_id]  # the widget drops the one it shows


async def test_without_the_settle_window_the_late_lower_id_would_be_skipped() -> None:
    """The control: a cursor at the highest id listed (the old rule) skips the reply for good."""
    async with web_env(resume_settle=0.0) as env:
        token = await env.token()
        to = Address("web", token.split(".")[1])
        env.host._next = 2
        await env.host.reply(to, "bot message")
        async with env.connect(token) as c:
            await c.recv_type("ready")
            await c.send({"type": "resume", "after": 0})
            cursor = (await c.recv_type("history"))["cursor"]
        env.host.messages.insert(0, Stored(TranscriptItem(id=1, created_at=utcnow(), direction="out",
                                                          author_kind="agent", text="agent reply"), to))
        async with env.connect(token) as c:
            await c.recv_type("ready")
            await c.send({"type": "resume", "after": cursor})
            assert (await c.recv_type("history"))["messages"] == []  # what the settle window prevents


async def test_redis_reply_from_another_process_and_a_lost_pubsub_connection(redis_server_url: str) -> None:  # noqa: F811
    """The socket is held by the web process; the worker (its own RedisHub) sends. When the web
    process's pub/sub connection drops, its sockets are closed (4409) and resume what was missed."""
    import redis.asyncio as aioredis

    async with web_env(hub=RedisHub(redis_server_url)) as env:
        worker_side = RedisHub(redis_server_url)
        sender = WebChatChannel(secret_key="test-secret-key", hub=worker_side)
        admin = aioredis.from_url(redis_server_url)
        try:
            token = await env.token()
            to = Address("web", token.split(".")[1])
            async with env.connect(token) as c:
                await c.recv_type("ready")  # sent only once Redis confirmed the subscription
                first = env.host._add(to, direction="out", author_kind="agent", text="stored").id
                assert (await sender.send(to, OutboundMessage("stored", message_id=first))).status == "delivered"
                assert (await c.recv_type("message"))["id"] == first

                await admin.client_kill_filter(_type="pubsub")
                with pytest.raises(ConnectionClosed) as info:
                    await c.recv_type("message", wait=10)
                assert info.value.rcvd is not None and info.value.rcvd.code == CLOSE_RESYNC
            missed = env.host._add(to, direction="out", author_kind="agent", text="while away").id
            async with env.connect(token) as c:
                await c.recv_type("ready", wait=10)
                await c.send({"type": "resume", "after": 0})
                assert [m["id"] for m in (await c.recv_type("history"))["messages"]] == [first, missed]
                await sender.send(to, OutboundMessage("live again", message_id=missed + 1))
                assert (await c.recv_type("message"))["text"] == "live again"
        finally:
            await admin.aclose()
            await sender.aclose()  # closes the worker's hub too
