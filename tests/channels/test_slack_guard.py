"""Slack routes check size, then the signature on the raw bytes, then the shape: bad input is 4xx, never 5xx
(issue 13, class 2). Signed but odd button values get an ephemeral notice and never reach the host."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI

from bot.settings import Settings
from channels import slack_blocks as kit
from channels.slack import STALE_BUTTON, SlackChannel
from tests.channels.test_slack import SECRET, RecordingHost
from tests.fakes.slack import FakeSlack, block_action, interactive_request, running, sign

ROUTES = ("/slack/events", "/slack/interactivity", "/slack/commands")
BAD_BODIES = [
    b"{not json", b"\xff\xfe\x00garbage", b"[1, 2, 3]", b"payload=%7Bx", b"payload=%5B1%5D", b"",
    b"payload=" + b"%5B" * 5000, b"\"just a string\"", b"a=%ZZ&b", b"payload=1&payload=2",
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with running(FakeSlack(users={"U0AGENT": "Ann"})) as f:
        yield f


@pytest.fixture
async def slack(fake: FakeSlack, settings_factory: Callable[..., Settings]) -> AsyncIterator[Any]:
    settings = settings_factory(slack_bot_token="xoxb-test-token", slack_signing_secret=SECRET,
                                slack_api_base_url=fake.base_url, slack_timeout=0.5)
    host = RecordingHost()
    channel = SlackChannel(settings, host=host)
    app = FastAPI()
    app.include_router(channel.router())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        yield channel, host, http
    await channel.aclose()


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("body", BAD_BODIES)
async def test_unsigned_malformed_bodies_are_401(slack: Any, path: str, body: bytes) -> None:
    _, host, http = slack
    for headers in ({}, {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=00"},
                    {"X-Slack-Request-Timestamp": "1e3", "X-Slack-Signature": "v0=00"},
                    {"X-Slack-Request-Timestamp": "\u0661\u0662".encode(), "X-Slack-Signature": "v0=00"},
                    {**sign("wrong-secret", body)}):
        resp = await http.post(path, content=body, headers={"Content-Type": "application/json", **headers})
        assert resp.status_code == 401, (path, body[:20], headers, resp.text)
    assert host.calls == []


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("body", BAD_BODIES)
async def test_signed_malformed_bodies_are_400(slack: Any, path: str, body: bytes) -> None:
    _, host, http = slack
    if path == "/slack/commands" and body == b"":
        pytest.skip("an empty form is well-formed: bolt answers it (tested below: not 5xx)")
    resp = await http.post(path, content=body, headers={"Content-Type": "application/json", **sign(SECRET, body)})
    assert resp.status_code == 400, (path, body[:20], resp.text)
    assert host.calls == []


async def test_signed_odd_forms_are_never_5xx(slack: Any) -> None:
    _, _, http = slack
    for body in (b"", b"payload=%7Bx", b"text=hi", b"payload=1&payload=2"):
        resp = await http.post("/slack/commands", content=body, headers=sign(SECRET, body))
        assert resp.status_code < 500, (body, resp.status_code)


async def test_oversized_bodies_are_refused_before_reading(slack: Any) -> None:
    _, _, http = slack
    body = b"x" * (300 * 1024)
    resp = await http.post("/slack/events", content=body, headers=sign(SECRET, body))
    assert resp.status_code == 413
    resp = await http.post("/slack/events", content=b"{}", headers={"Content-Length": "999999999"})
    assert resp.status_code in (400, 413)


@pytest.mark.parametrize("value", ["abc", "-1", "1e3", "0", "99999999999999999999999999", "", "7.5", "\u0667"])
@pytest.mark.parametrize("action_id", [kit.A_SEND, kit.A_NOT_HELPFUL, kit.A_ESCALATE, kit.A_RESOLVE, kit.A_TAKE,
                                       kit.A_EDIT, kit.A_NOTE])
async def test_signed_odd_action_values_get_a_notice(slack: Any, fake: FakeSlack, action_id: str,
                                                     value: str) -> None:
    channel, host, http = slack
    body, headers = interactive_request(SECRET, block_action(
        user="U0AGENT", action_id=action_id, value=value, channel="C1", message_ts="5.0", thread_ts="1.0"))
    resp = await http.post("/slack/interactivity", content=body, headers=headers)
    assert resp.status_code == 200
    await channel.drain()
    assert [c for c in host.calls if c[0] != "open_edit"] == []
    assert fake.ephemerals and fake.ephemerals[-1]["user"] == "U0AGENT"
    assert fake.ephemerals[-1]["text"] in (STALE_BUTTON, "That suggestion is no longer available.")


@pytest.mark.parametrize("meta", [{"c": "abc"}, {"c": -1}, {"c": 10**30}, {"c": "3x", "s": "x"}, {}, {"c": [1]}])
async def test_signed_odd_modal_metadata_gets_a_notice(slack: Any, fake: FakeSlack, meta: dict[str, Any]) -> None:
    channel, host, http = slack
    meta = {**meta, "ch": "C1", "th": "1.0"}
    for callback in (kit.V_EDIT, kit.V_NOTE):
        view = {"id": "V1", "type": "modal", "callback_id": callback, "private_metadata": json.dumps(meta),
                "state": {"values": {kit.INPUT_BLOCK: {kit.INPUT_ACTION: {"type": "plain_text_input",
                                                                            "value": "hello"}}}}}
        payload = {"type": "view_submission", "team": {"id": "T0"}, "user": {"id": "U0AGENT", "name": "ann"},
                   "view": view, "api_app_id": "A0APP"}
        body = urlencode({"payload": json.dumps(payload)}).encode()
        resp = await http.post("/slack/interactivity", content=body,
                               headers={"Content-Type": "application/x-www-form-urlencoded", **sign(SECRET, body)})
        assert resp.status_code == 200
    await channel.drain()
    assert host.calls == []
    assert [e["text"] for e in fake.ephemerals] == [STALE_BUTTON, STALE_BUTTON]


async def test_signed_forms_sent_as_json_and_fields_of_the_wrong_type_are_400(slack: Any) -> None:
    """Found by the fuzz pass (tests/channels/test_fuzz.py): bolt parses JSON whenever the Content-Type says
    so or the body starts with '{', and listeners read fields by type; both were 500s."""
    _, host, http = slack
    form = urlencode({"command": "/switchboard", "text": "queue", "user_id": "U0AGENT"}).encode()
    resp = await http.post("/slack/commands", content=form,
                           headers={"Content-Type": "application/json", **sign(SECRET, form)})
    assert resp.status_code == 400
    for event in ({"type": "message", "channel": "C1", "user": "U0AGENT", "text": "hi", "ts": "2.0",
                   "thread_ts": "1.0", "files": True},
                  {"type": "message", "subtype": "message_changed", "channel": "C1", "message": "not an object"},
                  {"type": "message", "channel": "C1", "user": {"id": "U1"}, "ts": "2.0", "thread_ts": "1.0"}):
        body = json.dumps({"type": "event_callback", "event_id": "Ev1", "event": event}).encode()
        resp = await http.post("/slack/events", content=body,
                               headers={"Content-Type": "application/json", **sign(SECRET, body)})
        assert resp.status_code == 400, (event, resp.text)
    payload = block_action(user="U0AGENT", action_id=kit.A_RESOLVE, value="1", channel="C1", message_ts="1.0")
    for odd in ({"user": "U0AGENT"}, {"actions": {"value": "1"}}, {"channel": "C1"}, {"view": {"state": []}}):
        body, headers = interactive_request(SECRET, {**payload, **odd})
        resp = await http.post("/slack/interactivity", content=body, headers=headers)
        assert resp.status_code == 400, (odd, resp.text)
    assert host.calls == []
