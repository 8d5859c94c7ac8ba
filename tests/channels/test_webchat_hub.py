"""Web chat fan-out hubs: in-process, and Redis pub/sub across "processes" (a real redis-server)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.messages import Address, OutboundMessage
from channels.base import TransientSendError
from channels.webchat_hub import OVERFLOW, LocalHub, RedisHub
from tests.channels.webchat_support import web_env


async def test_local_hub_fans_out_and_forgets_closed_subscribers() -> None:
    hub = LocalHub()
    async with hub.subscribe("s") as a, hub.subscribe("s") as b, hub.subscribe("t") as other:
        assert await hub.publish("s", {"n": 1}) == 2
        assert await a.get() == {"n": 1} and await b.get() == {"n": 1}
        assert other._queue.empty()
    assert await hub.publish("s", {"n": 2}) == 0
    assert not hub.has_subscribers("s")


async def test_a_slow_subscriber_overflows_instead_of_growing_without_bound() -> None:
    hub = LocalHub(inbox_size=3)
    async with hub.subscribe("s") as inbox:
        for n in range(10):
            await hub.publish("s", {"n": n})
        got = [await inbox.get() for _ in range(3)]
        assert got[-1] is OVERFLOW and inbox.overflowed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server)")
    folder: Path = tmp_path_factory.mktemp("redis")
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(folder), "--save", "",
         "--appendonly", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            subprocess.run(["sleep", "0.05"], check=True)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


async def test_redis_hub_reaches_a_socket_held_by_another_process(redis_url: str) -> None:
    """The socket is on the web process's channel; the worker's channel (its own RedisHub) sends."""
    async with web_env(hub=RedisHub(redis_url)) as env:
        worker_side = RedisHub(redis_url)
        try:
            from channels.webchat import WebChatChannel

            sender = WebChatChannel(secret_key="test-secret-key", hub=worker_side)
            token = await env.token()
            sid = token.split(".")[1]
            async with env.connect(token) as a, env.connect(token) as b:
                await a.recv_type("ready")
                await b.recv_type("ready")
                result = await sender.send(Address("web", sid), OutboundMessage("via redis", message_id=7))
                assert result.status == "delivered"
                for c in (a, b):
                    frame = await c.recv_type("message")
                    assert (frame["id"], frame["text"]) == (7, "via redis")
                # the customer's own message is mirrored through Redis to the other tab
                await a.send({"type": "message", "client_id": "m1", "text": "hello"})
                assert (await b.recv_type("message"))["client_id"] == "m1"
            await asyncio.sleep(0.2)
            # once no socket is open for the session, nobody is subscribed: still a success ("sent")
            assert (await sender.send(Address("web", sid), OutboundMessage("later", message_id=8))).status == "sent"
        finally:
            await worker_side.aclose()


async def test_redis_down_is_a_transient_send_error() -> None:
    hub = RedisHub(f"redis://127.0.0.1:{_free_port()}/0", timeout=1.0)
    try:
        from channels.webchat import WebChatChannel

        channel = WebChatChannel(secret_key="k", hub=hub)
        with pytest.raises(TransientSendError):
            await channel.send(Address("web", "s" * 22), OutboundMessage("x", message_id=1))
    finally:
        await hub.aclose()


async def test_redis_down_when_a_socket_connects_is_a_clear_error_not_a_crash() -> None:
    from websockets.exceptions import ConnectionClosed

    async with web_env(hub=RedisHub(f"redis://127.0.0.1:{_free_port()}/0", timeout=1.0)) as env:
        async with env.connect() as c:
            assert (await c.recv())["code"] == "unavailable"
            with pytest.raises(ConnectionClosed) as info:
                await c.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 1011
