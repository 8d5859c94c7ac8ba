"""The web chat channel against a real uvicorn on loopback, driven by a `websockets` client."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bot.messages import Address, OutboundMessage
from channels.base import Channel
from channels.webchat import WebChatChannel
from channels.webchat_session import RateLimiter, SessionSigner
from tests.channels.webchat_support import web_env


def cid() -> str:
    return str(uuid.uuid4())


# ---- pure pieces -------------------------------------------------------------------------------------


def test_channel_satisfies_the_contract() -> None:
    assert isinstance(WebChatChannel(secret_key="k"), Channel)
    assert WebChatChannel.name == "web"


def test_token_verifies_and_forgeries_do_not() -> None:
    signer = SessionSigner("secret-a")
    token = signer.issue()
    claims = signer.verify(token)
    assert claims is not None and token.split(".")[1] == claims.sid and len(claims.sid) >= 16
    other = signer.verify(signer.issue())
    assert other is not None and other.sid != claims.sid  # a fresh session each time
    assert SessionSigner("secret-b").verify(token) is None  # another secret
    version, s, exp, sig = token.split(".")
    forged = f"{version}.{s[:-1] + ('A' if s[-1] != 'A' else 'B')}.{exp}.{sig}"
    longer = f"{version}.{s}.{int(exp) + 1000}.{sig}"  # a token cannot extend itself
    for bad in (forged, longer, "", "v1..", f"v1.{s}.{sig}", f"{token}.x", "x" * 500, f"v2.{s}.{exp}.{sig[:-2]}",
                None, 12, ["v2"]):
        assert signer.verify(bad) is None, bad


def test_rate_limiter_is_a_token_bucket() -> None:
    limiter = RateLimiter(6)  # 6 per minute: burst of 6, one more every 10 s
    assert [limiter.take("a", now=100.0) for _ in range(6)] == [0.0] * 6
    wait = limiter.take("a", now=100.0)
    assert wait == pytest.approx(10.0)
    assert limiter.take("b", now=100.0) == 0.0  # per key
    assert limiter.take("a", now=105.0) == pytest.approx(5.0)
    assert limiter.take("a", now=110.0) == 0.0


# ---- the socket ----------------------------------------------------------------------------------------


async def test_forged_or_missing_token_gets_a_clear_error_then_4401() -> None:
    async with web_env() as env:
        good = await env.token()
        version, sid, exp, sig = good.split(".")
        for token in ("nonsense", f"{version}.{sid}.{exp}.{'A' * len(sig)}", ""):
            async with env.connect(token) as c:
                frame = await c.recv()
                assert frame["type"] == "error" and frame["code"] == "invalid_session"
                with pytest.raises(ConnectionClosed) as info:
                    await c.recv()
                assert info.value.rcvd is not None and info.value.rcvd.code == 4401
        assert env.host.receive_calls == 0


async def test_message_is_acked_stored_and_answered_with_typing_in_between() -> None:
    async with web_env(echo=True) as env, env.connect() as c:
        assert (await c.recv())["type"] == "ready"
        client_id = cid()
        await c.send({"type": "message", "client_id": client_id, "text": "Where is my order?"})
        ack = await c.recv()
        assert ack == {"type": "ack", "client_id": client_id, "id": ack["id"], "duplicate": False,
                       "text": "Where is my order?"}
        mirror = await c.recv()  # the customer's own message, for the session's other tabs
        assert (mirror["type"], mirror["id"], mirror["client_id"], mirror["author_kind"]) == (
            "message", ack["id"], client_id, "customer")
        assert await c.recv() == {"type": "typing", "on": True}
        reply = await c.recv()
        assert reply["type"] == "message" and reply["text"] == "echo: Where is my order?"
        assert reply["author_kind"] == "bot" and reply["id"] > ack["id"] and reply["created_at"]
        stored = env.host.stored_for(c.sid)
        assert [(m.direction, m.text) for m in stored] == [("in", "Where is my order?"),
                                                           ("out", "echo: Where is my order?")]
        assert stored[0].platform_id == f"{c.sid}:{client_id}"


async def test_resending_the_same_client_id_stores_once() -> None:
    async with web_env() as env:
        token = await env.token()
        client_id = cid()
        ids = []
        for _ in range(2):  # e.g. the widget resends after a reconnect
            async with env.connect(token) as c:
                await c.send({"type": "message", "client_id": client_id, "text": "hello"})
                ids.append(await c.recv_type("ack"))
        assert ids[0]["id"] == ids[1]["id"] and ids[1]["duplicate"] is True
        assert len(env.host.stored_for(c.sid)) == 1


async def test_resume_returns_history_after_the_last_seen_id_with_client_ids() -> None:
    async with web_env() as env:
        token = await env.token()
        sid = token.split(".")[1]
        async with env.connect(token) as c:
            first = cid()
            await c.send({"type": "message", "client_id": first, "text": "one"})
            a1 = await c.recv_type("ack")
        r1 = await env.host.reply(Address("web", sid), "answer one")  # delivered while offline
        await env.host.reply(Address("web", sid), "a person will follow up", author_kind="system")
        async with env.connect(token) as c:
            await c.send({"type": "resume", "after": 0})
            hist = await c.recv_type("history")
            assert [(m["id"], m["text"], m["author_kind"]) for m in hist["messages"]] == [
                (a1["id"], "one", "customer"), (r1, "answer one", "bot"), (r1 + 1, "a person will follow up", "system")
            ]
            assert hist["messages"][0]["client_id"] == first and "client_id" not in hist["messages"][1]
            await c.send({"type": "resume", "after": r1})
            hist = await c.recv_type("history")
            assert [m["id"] for m in hist["messages"]] == [r1 + 1]
        async with env.connect() as other:  # another session sees nothing of it
            await other.send({"type": "resume", "after": 0})
            assert (await other.recv_type("history"))["messages"] == []


BAD_FRAMES = [
    ("not json", "{nope", "bad_frame"),
    ("json array", "[1, 2]", "bad_frame"),
    ("no type", json.dumps({"text": "hi"}), "bad_frame"),
    ("unknown type", json.dumps({"type": "explode"}), "bad_frame"),
    ("missing client_id", json.dumps({"type": "message", "text": "hi"}), "bad_frame"),
    ("bad client_id", json.dumps({"type": "message", "client_id": "<script>", "text": "hi"}), "bad_frame"),
    ("text not a string", json.dumps({"type": "message", "client_id": "c1", "text": 5}), "bad_frame"),
    ("empty text", json.dumps({"type": "message", "client_id": "c1", "text": "   "}), "bad_frame"),
    ("lone surrogate", '{"type": "message", "client_id": "c1", "text": "bad \\ud800 text"}', "bad_frame"),
    ("NUL", json.dumps({"type": "message", "client_id": "c1", "text": "a\x00b"}), "bad_frame"),
    ("resume with a string", json.dumps({"type": "resume", "after": "x"}), "bad_frame"),
    ("resume negative", json.dumps({"type": "resume", "after": -3}), "bad_frame"),
    ("binary frame", b'{"type": "message", "client_id": "c1", "text": "hi"}', "bad_frame"),
    ("binary invalid utf-8", b"\xff\xfe", "bad_frame"),
    ("too long", json.dumps({"type": "message", "client_id": "c1", "text": "x" * 101}), "too_long"),
    ("huge frame", json.dumps({"type": "message", "client_id": "c1", "text": "x" * 50_000}), "too_long"),
]


@pytest.mark.parametrize(("frame", "code"), [b[1:] for b in BAD_FRAMES], ids=[b[0] for b in BAD_FRAMES])
async def test_bad_input_gets_a_clear_error_and_the_connection_stays_open(frame: str | bytes, code: str) -> None:
    async with web_env(max_message_chars=100) as env, env.connect() as c:
        await c.send({"type": "message", "client_id": "before", "text": "kept"})
        await c.recv_type("ack")
        await c.send(frame)
        error = await c.recv_type("error")
        assert error["code"] == code and error["detail"]
        if code == "too_long":
            assert error["limit"] == 100
        # the same connection still works, and nothing of the bad frame was stored
        await c.send({"type": "message", "client_id": "after", "text": "still here"})
        assert (await c.recv_type("ack"))["client_id"] == "after"
        assert [m.text for m in env.host.stored_for(c.sid)] == ["kept", "still here"]


async def test_invalid_utf8_in_a_text_frame_is_a_protocol_error_not_a_server_error() -> None:
    """RFC 6455 makes invalid UTF-8 in a text frame fatal (close 1007): the server's websocket layer
    closes that connection cleanly; the app never sees the frame, nothing is stored, and the session
    reconnects and resumes with its conversation intact. (Binary frames are the recoverable path.)"""
    from websockets.frames import Frame, Opcode

    async with web_env() as env:
        token = await env.token()
        async with env.connect(token) as c:
            await c.send({"type": "message", "client_id": "m1", "text": "kept"})
            await c.recv_type("ack")
            c.ws.protocol.send_frame(Frame(Opcode.TEXT, b'{"type":"message","text":"\xff\xfe"}'))
            c.ws.send_data()  # type: ignore[attr-defined]
            with pytest.raises(ConnectionClosed) as info:
                await c.recv_type("never")
            assert info.value.rcvd is not None and info.value.rcvd.code == 1007
        async with env.connect(token) as c:
            await c.send({"type": "resume", "after": 0})
            assert [m["text"] for m in (await c.recv_type("history"))["messages"]] == ["kept"]


async def test_rate_limit_is_per_session_not_per_connection() -> None:
    async with web_env(rate_per_minute=3) as env:
        token = await env.token()
        async with env.connect(token) as a, env.connect(token) as b, env.connect() as other:
            for i, c in enumerate((a, b, a)):
                await c.send({"type": "message", "client_id": f"m{i}", "text": f"hi {i}"})
                await c.recv_type("ack")
            await b.send({"type": "message", "client_id": "m3", "text": "one too many"})
            err = await b.recv_type("error")
            assert err["code"] == "rate_limited" and err["client_id"] == "m3"
            assert 0 < err["retry_after"] <= 20.0
            await other.send({"type": "message", "client_id": "x", "text": "another session is fine"})
            assert (await other.recv_type("ack"))["client_id"] == "x"
            # still connected, and resume (a separate, larger allowance) still answers
            await b.send({"type": "resume", "after": 0})
            assert len((await b.recv_type("history"))["messages"]) == 3
        assert [m.text for m in env.host.stored_for(a.sid)] == ["hi 0", "hi 1", "hi 2"]


async def test_send_fans_out_to_every_tab_and_succeeds_with_none() -> None:
    async with web_env() as env:
        token = await env.token()
        sid = token.split(".")[1]
        async with env.connect(token) as a, env.connect(token) as b, env.connect() as other:
            for c in (a, b, other):
                await c.recv_type("ready")
            result = await env.channel.send(Address("web", sid), OutboundMessage("hello both", message_id=41))
            assert result.status == "delivered"
            for c in (a, b):
                frame = await c.recv_type("message")
                assert (frame["id"], frame["text"]) == (41, "hello both")
            # a customer message typed in one tab shows in the other
            await a.send({"type": "message", "client_id": "tab-a", "text": "from tab a"})
            mirrored = await b.recv_type("message")
            assert (mirrored["client_id"], mirrored["text"], mirrored["author_kind"]) == (
                "tab-a", "from tab a", "customer")
            assert await other.nothing_for(0.3) == []
        result = await env.channel.send(Address("web", sid), OutboundMessage("nobody home", message_id=42))
        assert result.status == "sent"


async def test_talk_to_a_human() -> None:
    async with web_env() as env, env.connect() as c:
        await c.send({"type": "human"})
        assert await c.recv_type("human") == {"type": "human", "ok": True}
        assert env.host.humans == [Address("web", c.sid)]


async def test_typing_from_the_client_is_ignored_and_typing_on_times_out() -> None:
    async with web_env(typing_timeout=0.2) as env, env.connect() as c:
        await c.send({"type": "typing"})
        await c.send({"type": "message", "client_id": "m1", "text": "no bot here"})
        await c.recv_type("ack")
        assert await c.recv_type("typing") == {"type": "typing", "on": True}
        assert await c.recv(2.0) == {"type": "typing", "on": False}


async def test_a_failing_host_is_a_retryable_error_not_a_dropped_connection() -> None:
    async with web_env() as env, env.connect() as c:
        env.host.fail_next = 1
        await c.send({"type": "message", "client_id": "m1", "text": "hello"})
        err = await c.recv_type("error")
        assert (err["code"], err["client_id"]) == ("server_error", "m1")
        await c.send({"type": "message", "client_id": "m1", "text": "hello"})  # the widget retries
        assert (await c.recv_type("ack"))["duplicate"] is False
        assert [m.text for m in env.host.stored_for(c.sid)] == ["hello"]


async def test_origin_check() -> None:
    async with web_env(allowed_origins="https://shop.example, https://www.shop.example") as env:
        async with env.connect(origin="https://shop.example") as c:  # type: ignore[arg-type]
            assert (await c.recv())["type"] == "ready"
        async with env.connect(origin="https://evil.example", auth=False) as c:  # type: ignore[arg-type]
            assert (await c.recv())["code"] == "forbidden_origin"
            with pytest.raises(ConnectionClosed):
                await c.recv()
        port = env.url.rsplit(":", 1)[1]
        async with env.connect(origin=f"http://127.0.0.1:{port}") as c:  # same origin is always fine
            assert (await c.recv())["type"] == "ready"
        async with httpx.AsyncClient(timeout=5) as client:
            ok = await client.post(env.url + "/api/web/session", headers={"Origin": "https://shop.example"})
            assert ok.headers["access-control-allow-origin"] == "https://shop.example"
            bad = await client.post(env.url + "/api/web/session", headers={"Origin": "https://evil.example"})
            assert bad.status_code == 403


async def test_static_widget_and_demo_page_are_served() -> None:
    async with web_env() as env, httpx.AsyncClient(timeout=5) as client:
        js = await client.get(env.url + "/widget.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        assert "sb-widget" in js.text and "/ws/chat" in js.text
        page = await client.get(env.url + "/")
        assert page.status_code == 200 and 'src="/widget.js"' in page.text


async def test_plain_http_to_the_socket_path_is_a_client_error() -> None:
    async with web_env() as env, httpx.AsyncClient(timeout=5) as client:
        r = await client.get(env.url + "/ws/chat")
        assert 400 <= r.status_code < 500
        with pytest.raises(InvalidStatus):
            async with websockets.connect(env.url.replace("http", "ws") + "/nope", open_timeout=5):
                pass


async def test_concurrent_sessions_do_not_interfere() -> None:
    async with web_env(echo=True) as env:
        async def chat(n: int) -> list[str]:
            async with env.connect() as c:
                texts = []
                for i in range(3):
                    await c.send({"type": "message", "client_id": f"c{n}-{i}", "text": f"s{n} m{i}"})
                    while (frame := await c.recv_type("message"))["author_kind"] == "customer":
                        pass
                    texts.append(frame["text"])
                return texts

        results = await asyncio.gather(*(chat(n) for n in range(8)))
        assert results == [[f"echo: s{n} m{i}" for i in range(3)] for n in range(8)]


async def test_a_clarifying_question_carries_its_options_as_buttons() -> None:
    async with web_env() as env:
        token = await env.token()
        sid = token.split(".")[1]
        async with env.connect(token) as c:
            await c.recv_type("ready")
            meta = {"options": [{"label": "Promo codes", "value": "1"}, {"label": "Gift cards", "value": "2"},
                                {"label": 3}, "junk"]}
            await env.channel.send(Address("web", sid), OutboundMessage("Which one?", message_id=7, meta=meta))
            frame = await c.recv_type("message")
            assert frame["options"] == ["Promo codes", "Gift cards"]
            await env.channel.send(Address("web", sid), OutboundMessage("plain", message_id=8))
            assert "options" not in await c.recv_type("message")
