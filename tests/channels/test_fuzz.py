"""A hypothesis fuzz pass over what outsiders and platforms can reach (issue 13): the three Slack routes,
the two Twilio routes and the web chat WebSocket frames, against the whole app (create_app: real
pipeline, worker, database) served by uvicorn, with the fake Slack and Twilio on loopback.

Each input is unsigned, badly signed or correctly signed, with odd bodies, headers and values. Every
answer is below 500, every socket either answers or closes with a 4xxx/1000-range code (never 1011),
and nothing is logged at ERROR (an unhandled exception) while it runs, on SQLite and PostgreSQL. Bounded:
140 examples per database (about half a minute each).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from bot.app import create_app
from bot.migrate import upgrade
from bot.settings import Settings
from channels import slack_blocks as kit
from tests.bot.helpers import TableSearcher
from tests.fakes.server import serve
from tests.fakes.slack import FakeSlack, running
from tests.fakes.twilio import running_fake, sign

SECRET = "fuzz-signing-secret-123"
ACCOUNT_SID = "AC" + "7" * 32
AUTH_TOKEN = "1f2e3d4c5b6a79887766554433221100"
PUBLIC = "https://support.example.test"
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])


class Errors(logging.Handler):
    """Collects every record at ERROR or above (an unhandled exception is logged at ERROR)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Live:
    url: str
    errors: Errors

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        with httpx.Client(timeout=10) as client:
            return client.post(self.url + path, content=body, headers=headers)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The whole app on its own event loop in a thread (hypothesis drives it synchronously), on SQLite and
    on PostgreSQL (which refuses what SQLite stores: NUL, over-long values)."""
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    db_url = f"sqlite+aiosqlite:///{tmp / 'fuzz.db'}"
    if request.param == "postgres":
        cluster = request.getfixturevalue("pg_cluster")
        db_url = cluster.create_database() if cluster is not None else os.environ["TEST_DATABASE_URL"]
    upgrade(db_url)
    ready: dict[str, str] = {}
    started, stop = threading.Event(), threading.Event()

    async def main() -> None:
        async with running(FakeSlack(users={"U0AGENT": "Ann"})) as slack, \
                running_fake(ACCOUNT_SID, AUTH_TOKEN) as twilio:
            s = Settings(_env_file=None, environment="test", database_url=db_url,
                         index_dir=tmp / "index", secret_key="fuzz-secret-key-0123456789abcdefghij",
                         public_base_url=PUBLIC, slack_bot_token="xoxb-test-token", slack_signing_secret=SECRET,
                         slack_api_base_url=slack.base_url, slack_agents_channel="C0AGENTS",
                         slack_timeout=0.5, twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
                         twilio_from_number="+15550001111", twilio_api_base_url=twilio.url, send_timeout=1.0,
                         web_sessions_per_minute=100_000, outbox_poll_seconds=0.2)
            app = create_app(s, kb=TableSearcher({"refund": ("refunds", 0.9)}))
            async with serve(app, lifespan="on") as url:
                ready["url"] = url
                started.set()
                await asyncio.to_thread(stop.wait)

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert started.wait(60), "the app did not start"
    errors = Errors()
    logging.getLogger().addHandler(errors)
    try:
        yield Live(ready["url"], errors)
    finally:
        logging.getLogger().removeHandler(errors)
        stop.set()
        thread.join(30)


def _no_errors(live: Live) -> None:
    found = [f"{r.name}: {r.getMessage()}" for r in live.errors.records]
    live.errors.records.clear()
    assert not found, "\n".join(found)


# ---- Slack ------------------------------------------------------------------------------------------

text = st.text(max_size=40)
odd_numbers = st.sampled_from(["abc", "-1", "0", "1e3", "1" * 30, "1.5", " 7", "\x00", "", "2"])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3), max_leaves=10)


def _slack_sign(body: bytes, mode: str, ts: str) -> dict[str, str]:
    if mode == "none":
        return {}
    if mode == "garbage":
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + "0" * 64}
    now = str(int(time.time()))
    mac = hmac.new(SECRET.encode(), b"v0:" + now.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": now, "X-Slack-Signature": "v0=" + mac}


events = st.fixed_dictionaries({
    "type": st.sampled_from(["event_callback", "url_verification", "app_rate_limited"]) | text,
    "event_id": text, "team_id": text, "challenge": json_values,
    "event": st.fixed_dictionaries({
        "type": st.sampled_from(["message", "app_home_opened", "app_mention"]) | text,
        "subtype": st.none() | st.sampled_from(["message_changed", "message_deleted", "file_share"]) | text,
        "channel": st.sampled_from(["C0AGENTS", "D1"]) | text, "user": st.sampled_from(["U0AGENT"]) | text,
        "text": text, "ts": odd_numbers, "thread_ts": odd_numbers | json_values, "tab": text,
        "message": json_values, "previous_message": json_values, "files": json_values,
    }),
})
actions = st.sampled_from([kit.A_SEND, kit.A_EDIT, kit.A_NOT_HELPFUL, kit.A_ESCALATE, kit.A_RESOLVE, kit.A_NOTE,
                           kit.A_TAKE]) | text
payloads = st.fixed_dictionaries({
    "type": st.sampled_from(["block_actions", "view_submission", "shortcut", "view_closed"]) | text,
    "user": st.fixed_dictionaries({"id": st.sampled_from(["U0AGENT"]) | text, "name": text}) | json_values,
    "actions": st.lists(st.fixed_dictionaries({"action_id": actions, "value": odd_numbers | json_values,
                                               "block_id": text}), max_size=2),
    "view": st.fixed_dictionaries({"callback_id": st.sampled_from([kit.V_EDIT, kit.V_NOTE]) | text,
                                   "private_metadata": text | json_values.map(json.dumps), "id": text,
                                   "state": json_values}),
    "channel": json_values, "container": json_values, "message": json_values, "trigger_id": text,
    "team": json_values,
})
commands = st.fixed_dictionaries({
    "command": st.just("/switchboard") | text, "text": st.sampled_from(["queue", "resolve 1", "assign 1 <@U1>",
                                                                       "kb refund", "resolve -1", "report x"]) | text,
    "user_id": st.just("U0AGENT") | text, "channel_id": st.just("C0AGENTS") | text, "team_id": text,
    "trigger_id": text, "response_url": st.just("http://127.0.0.1:9/x"),
})
slack_bodies = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda e: json.dumps(e).encode(), events),
    st.builds(lambda p: urlencode({"payload": json.dumps(p)}).encode(), payloads),
    st.builds(lambda c: urlencode(c).encode(), commands),
    st.sampled_from([b"{", b"[]", b"payload=%7Bx", b"\xff\xfe", b"payload=", b"payload=1&payload=2", b"null"]),
)


@FUZZ
@given(path=st.sampled_from(["/slack/events", "/slack/interactivity", "/slack/commands"]), body=slack_bodies,
       mode=st.sampled_from(["valid", "valid", "none", "garbage"]), ts=odd_numbers | text,
       ctype=st.sampled_from(["application/json", "application/x-www-form-urlencoded", "text/plain", ""]))
def test_slack_routes_never_fail(live: Live, path: str, body: bytes, mode: str, ts: str, ctype: str) -> None:
    headers = {k: v for k, v in {"Content-Type": ctype, **_slack_sign(body, mode, ts)}.items()
               if v.isascii() and v == v.strip() and v.isprintable()}
    resp = live.post(path, body, headers)
    assert resp.status_code < 500, (resp.status_code, resp.text[:200])
    if mode != "valid":
        assert resp.status_code in (400, 401, 413), resp.status_code


# ---- Twilio ------------------------------------------------------------------------------------------

twilio_keys = st.sampled_from(["MessageSid", "SmsSid", "AccountSid", "From", "To", "Body", "NumMedia", "MediaUrl0",
                               "MediaContentType0", "MessageStatus", "SmsStatus", "ErrorCode", "NumSegments"])
twilio_values = st.one_of(text, st.sampled_from(["", " ", "\x00", "SM" + "a" * 300, "+1" + "5" * 400, "javascript:x",
                                                 "delivered", "failed", "-1", "99999999999999999999"]),
                          st.text(max_size=2000))


@FUZZ
@given(path=st.sampled_from(["/twilio/sms", "/twilio/status"]),
       params=st.dictionaries(twilio_keys | text, twilio_values, max_size=10),
       account=st.sampled_from([ACCOUNT_SID, "AC" + "1" * 32, None]),
       mode=st.sampled_from(["valid", "valid", "valid", "none", "garbage"]))
def test_twilio_routes_never_fail(live: Live, path: str, params: dict[str, str], account: str | None,
                                  mode: str) -> None:
    if account is not None:
        params = {**params, "AccountSid": account}
    body = urlencode(params).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if mode == "valid":
        headers["X-Twilio-Signature"] = sign(PUBLIC + path, params, AUTH_TOKEN)
    elif mode == "garbage":
        headers["X-Twilio-Signature"] = "bm90IGEgc2lnbmF0dXJl"
    resp = live.post(path, body, headers)
    assert resp.status_code < 500, (resp.status_code, resp.text[:200])
    if mode != "valid":
        assert resp.status_code == 403


# ---- web chat frames -------------------------------------------------------------------------------------

frame_types = st.sampled_from(["message", "resume", "human", "typing", "auth", "ping"]) | text
frames = st.one_of(
    st.builds(lambda d: json.dumps(d), st.fixed_dictionaries(
        {"type": frame_types}, optional={"text": text | json_values, "client_id": text | json_values,
                                         "after": json_values | odd_numbers, "token": text})),
    json_values.map(json.dumps),
    st.text(max_size=300),
    st.binary(max_size=100),
    st.sampled_from(["[" * 24_000, '{"a":' * 5000, r'{"type":"message","client_id":"s","text":"\ud800"}',
                     '{"type":"message","text":"' + "x" * 5000 + '"}']),
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(sent=st.lists(frames, min_size=1, max_size=5))
def test_websocket_frames_get_an_answer_never_a_crash(live: Live, sent: list[str | bytes]) -> None:
    with httpx.Client(timeout=10) as client:
        token = client.post(live.url + "/api/web/session").json()["token"]
    ws_url = live.url.replace("http://", "ws://") + "/ws/chat"
    with connect(ws_url, open_timeout=5, max_size=2**22) as ws:
        ws.send(json.dumps({"type": "auth", "token": token}))
        try:
            for frame in sent:
                ws.send(frame)
            ws.send(json.dumps({"type": "message", "client_id": "final-check", "text": "hello"}))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                got: dict[str, Any] = json.loads(ws.recv(timeout=deadline - time.monotonic()))
                assert got.get("type") in ("ready", "session", "ack", "history", "message", "typing", "human",
                                           "error"), got
                if got.get("type") == "ack" and got.get("client_id") == "final-check":
                    break
            else:
                raise AssertionError("the socket stopped answering")
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else None
            assert code is not None and code != 1011 and (code >= 4000 or code in (1000, 1008, 1009)), code


def test_nothing_was_logged_as_an_error(live: Live) -> None:
    """Runs last in this module (pytest keeps file order): the fuzz tests above logged no ERROR."""
    _no_errors(live)
