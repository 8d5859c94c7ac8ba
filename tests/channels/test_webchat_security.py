"""Web chat hardening (issue 13, classes 1 and 6): the token never in a URL or a log line, tokens expire and
renew silently, session minting is throttled per client address (in process and through Redis), CORS is
opt-in per origin, and every bad frame gets an error frame."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Callable

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from bot.app import create_app
from bot.migrate import upgrade
from bot.settings import Settings
from channels.webchat_session import SessionSigner
from channels.webchat_throttle import RedisThrottle
from tests.bot.helpers import TableSearcher
from tests.channels.test_webchat_hub import redis_url  # noqa: F401 - the fixture
from tests.channels.webchat_support import web_env
from tests.fakes.server import serve


async def test_the_access_log_holds_no_token(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(web_sessions_per_minute=100)
    await asyncio.to_thread(upgrade, settings.database_url)
    app = create_app(settings, kb=TableSearcher({}))
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    async with serve(app, log_level="info") as url:
        watched = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error", "switchboard")]
        for logger in watched:
            logger.addHandler(handler)
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                token = (await http.post(url + "/api/web/session")).json()["token"]
                await http.get(url + "/?token=" + token)  # a careless link: still not in the log
            ws_url = url.replace("http://", "ws://") + "/ws/chat"
            async with websockets.connect(ws_url, open_timeout=5) as ws:  # the widget's way
                await ws.send(json.dumps({"type": "auth", "token": token}))
                assert '"ready"' in str(await asyncio.wait_for(ws.recv(), 5))
            async with websockets.connect(ws_url + "?token=" + token, open_timeout=5) as ws:  # an old widget
                assert '"invalid_session"' in str(await asyncio.wait_for(ws.recv(), 5))
        finally:
            for logger in watched:
                logger.removeHandler(handler)
    text = out.getvalue()
    assert "/api/web/session" in text and "/ws/chat" in text  # the access log did record the requests
    sid = token.split(".")[1]
    assert token not in text and sid not in text, text
    assert "token=[redacted]" in text


async def test_a_token_in_the_url_or_no_auth_frame_is_refused() -> None:
    async with web_env(auth_timeout=0.3) as env:
        token = await env.token()
        async with websockets.connect(f"{env.ws_url}?token={token}", open_timeout=5) as ws:
            assert '"invalid_session"' in str(await ws.recv())
        async with env.connect(token, auth=False) as c:
            err = await c.recv()
            assert (err["type"], err["code"]) == ("error", "auth_timeout")
            with pytest.raises(ConnectionClosed):
                await c.recv()
        async with env.connect(token, auth=False) as c:
            await c.send({"type": "message", "client_id": "m1", "text": "hi"})  # not an auth frame
            assert (await c.recv())["code"] == "auth_required"
        assert env.host.receive_calls == 0


def test_tokens_expire_and_renew_for_the_same_session() -> None:
    signer = SessionSigner("k" * 40, ttl_seconds=60)
    token = signer.issue(now=1000.0)
    claims = signer.verify(token, now=1059.0)
    assert claims is not None and claims.expires_at == 1060
    assert signer.verify(token, now=1060.0) is None  # expired
    assert signer.needs_renewal(claims, now=1031.0) and not signer.needs_renewal(claims, now=1029.0)
    renewed = signer.verify(signer.issue(claims.sid, now=1050.0), now=1100.0)
    assert renewed is not None and renewed.sid == claims.sid


async def test_the_socket_renews_the_token_silently_and_refuses_expired_ones() -> None:
    async with web_env(session_ttl_seconds=4) as env:
        token = await env.token()
        async with env.connect(token) as c:
            ready = await c.recv_type("ready")
            fresh = env.channel.signer.verify(ready["token"])
            assert fresh is not None and fresh.sid == c.sid
            await asyncio.sleep(2.1)  # past half the lifetime: the next frame brings a new token
            await c.send({"type": "typing"})
            session = await c.recv_type("session")
            renewed = env.channel.signer.verify(session["token"])
            assert renewed is not None and renewed.sid == c.sid and renewed.expires_at > fresh.expires_at
        await asyncio.sleep(2.2)
        async with env.connect(token) as c:  # the first token has expired by now
            assert (await c.recv())["code"] == "invalid_session"
            with pytest.raises(ConnectionClosed) as info:
                await c.recv()
            assert info.value.rcvd is not None and info.value.rcvd.code == 4401
        async with env.connect(session["token"]) as c:  # the renewed one resumes the same session
            assert (await c.recv_type("ready"))["type"] == "ready"


async def test_every_bad_frame_gets_an_error_frame_and_the_socket_stays_open(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="switchboard.webchat")
    async with web_env() as env, env.connect() as c:
        await c.recv_type("ready")
        surrogate = r'{"type": "message", "client_id": "x", "text": "\ud800"}'
        for bad in ("[" * 24_000, '{"a":' * 4000, "[" * 100_000, surrogate, "null", '{"type": 5}', b"\x00\x01"):
            await c.send(bad)
            err = await c.recv_type("error")
            assert err["code"] in ("bad_frame", "too_long"), (bad[:10], err)
        await c.send({"type": "message", "client_id": "ok1", "text": "still here"})
        assert (await c.recv_type("ack"))["client_id"] == "ok1"
    assert "refused a frame" in caplog.text


async def test_session_minting_is_throttled_per_client_address() -> None:
    async with web_env(sessions_per_minute=5) as env, httpx.AsyncClient(timeout=5) as http:
        codes = [(await http.post(env.url + "/api/web/session")).status_code for _ in range(8)]
        assert codes == [200] * 5 + [429] * 3
        refused = await http.post(env.url + "/api/web/session")
        assert int(refused.headers["retry-after"]) >= 1 and refused.json()["error"] == "rate_limited"


async def test_minting_is_throttled_across_processes_through_redis(redis_url: str) -> None:  # noqa: F811
    first, second = RedisThrottle(redis_url, 4, prefix="t1:"), RedisThrottle(redis_url, 4, prefix="t1:")
    try:
        waits = [await (first if i % 2 else second).take("10.0.0.1") for i in range(6)]
        assert waits[:4] == [0.0] * 4 and all(w > 0 for w in waits[4:])
        assert await first.take("10.0.0.2") == 0.0  # per address
    finally:
        await first.aclose()
        await second.aclose()


async def test_cors_is_opt_in_per_origin() -> None:
    async with web_env() as env, httpx.AsyncClient(timeout=5) as http:  # default: no cross-origin site
        r = await http.post(env.url + "/api/web/session", headers={"Origin": "https://shop.example"})
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
        port = env.url.rsplit(":", 1)[1]
        same = await http.post(env.url + "/api/web/session", headers={"Origin": f"http://127.0.0.1:{port}"})
        assert same.status_code == 200 and "access-control-allow-origin" not in same.headers
    async with web_env(allowed_origins="https://shop.example") as env, httpx.AsyncClient(timeout=5) as http:
        r = await http.post(env.url + "/api/web/session", headers={"Origin": "https://shop.example"})
        assert r.headers["access-control-allow-origin"] == "https://shop.example"


@pytest.mark.parametrize(("environment", "key", "message"), [
    ("prod", "x" * 40, "not one of"),
    ("Production ", "dev-only-secret-key-change-me", "public development value"),
    ("production", "a", "too weak"),
    ("production", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "too weak"),
    ("staging", "Zk3s9dQm2LxW8pVt4nRb7yHc1gFj6uEa", "not one of"),
])
def test_production_refuses_to_start_with_a_weak_key_or_an_unknown_environment(
        environment: str, key: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Settings(_env_file=None, environment=environment, secret_key=key)  # type: ignore[call-arg]


def test_production_settings_and_docs_off(settings_factory: Callable[..., Settings]) -> None:
    strong = "Zk3s9dQm2LxW8pVt4nRb7yHc1gFj6uEa"
    assert Settings(_env_file=None, environment="PRODUCTION", secret_key=strong).is_production  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="WEB_ALLOWED_ORIGINS"):
        Settings(_env_file=None, environment="production", secret_key=strong,  # type: ignore[call-arg]
                 web_allowed_origins="*")
    from fastapi.testclient import TestClient

    for environment, expected in (("production", 404), ("development", 200)):
        settings = settings_factory(environment=environment, secret_key=strong)
        upgrade(settings.database_url)
        with TestClient(create_app(settings, kb=TableSearcher({}))) as client:
            assert client.get("/api/docs").status_code == expected
            assert client.get("/api/openapi.json").status_code == expected
            assert client.get("/redoc").status_code == 404
