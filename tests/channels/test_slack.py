"""channels/slack*: the bolt app against a recording AgentHost, the Web API error mapping against the
fake Slack server, Block Kit builders and command parsing."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bot.settings import Settings
from channels import slack_blocks as kit
from channels.base import PermanentSendError, TransientSendError
from channels.slack import Draft, SlackChannel, SlackUser
from channels.slack_api import SlackApi, make_client
from channels.slack_commands import parse_command
from tests.fakes.slack import (
    FakeSlack,
    block_action,
    command_request,
    event_request,
    interactive_request,
    running,
    sign,
)

SECRET = "channel-test-secret-42"


class RecordingHost:
    """An AgentHost that records calls and answers with canned notices."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.notice: str | None = None

    async def _rec(self, name: str, **kw: Any) -> str | None:
        self.calls.append((name, kw))
        return self.notice

    async def thread_reply(self, *, channel: str, thread_ts: str, ts: str, user: SlackUser, text: str,
                           files: Sequence[dict[str, Any]] = ()) -> str | None:
        return await self._rec("thread_reply", channel=channel, thread_ts=thread_ts, ts=ts, user=user, text=text)

    async def thread_edit(self, **kw: Any) -> str | None:
        return await self._rec("thread_edit", **kw)

    async def thread_delete(self, **kw: Any) -> str | None:
        return await self._rec("thread_delete", **kw)

    async def send_suggestion(self, **kw: Any) -> str | None:
        return await self._rec("send_suggestion", **kw)

    async def open_edit(self, *, suggestion_ref: str, user: SlackUser) -> Draft | None:
        self.calls.append(("open_edit", {"suggestion_ref": suggestion_ref}))
        return Draft(conversation_id=7, suggestion_ref=suggestion_ref, text="Prefilled <b>text</b>")

    async def edit_and_send(self, **kw: Any) -> str | None:
        return await self._rec("edit_and_send", **kw)

    async def not_helpful(self, **kw: Any) -> str | None:
        return await self._rec("not_helpful", **kw)

    async def escalate(self, **kw: Any) -> str | None:
        return await self._rec("escalate", **kw)

    async def resolve(self, **kw: Any) -> str | None:
        return await self._rec("resolve", **kw)

    async def take(self, **kw: Any) -> str | None:
        return await self._rec("take", **kw)

    async def note(self, **kw: Any) -> str | None:
        return await self._rec("note", **kw)

    async def command(self, *, user: SlackUser, text: str, channel: str | None) -> str:
        self.calls.append(("command", {"user": user, "text": text}))
        return f"you said {text}"

    async def home(self, *, user: SlackUser) -> dict[str, Any]:
        return kit.home_view(user=user.id, mine=[], queue=[])


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
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        yield channel, host, http
    await channel.aclose()


async def test_signatures_are_checked_by_bolt(slack: Any) -> None:
    channel, host, http = slack
    event = {"type": "message", "channel": "C1", "user": "U0AGENT", "text": "hi", "ts": "2.0", "thread_ts": "1.0"}
    body, headers = event_request("wrong-secret", event, event_id="Ev1")
    assert (await http.post("/slack/events", content=body, headers=headers)).status_code == 401
    body, headers = event_request(SECRET, event, event_id="Ev2", timestamp=1_000_000_000)
    assert (await http.post("/slack/events", content=body, headers=headers)).status_code == 401
    assert (await http.post("/slack/events", content=body)).status_code == 401
    assert host.calls == []
    body, headers = event_request(SECRET, event, event_id="Ev3")
    assert (await http.post("/slack/events", content=body, headers=headers)).status_code == 200
    assert host.calls[0][0] == "thread_reply"
    kw = host.calls[0][1]
    assert (kw["channel"], kw["thread_ts"], kw["ts"], kw["text"]) == ("C1", "1.0", "2.0", "hi")
    assert kw["user"] == SlackUser("U0AGENT", "Ann")  # display name from users.info


async def test_url_verification_challenge(slack: Any) -> None:
    _, _, http = slack
    body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "x"}).encode()
    resp = await http.post("/slack/events", content=body,
                           headers={"Content-Type": "application/json", **sign(SECRET, body)})
    assert resp.status_code == 200 and resp.json() == {"challenge": "abc123"}


async def test_buttons_modals_and_commands_reach_the_host(slack: Any, fake: FakeSlack) -> None:
    channel, host, http = slack
    host.notice = "Only supervisors can take escalations."
    for action_id, value in ((kit.A_SEND, "11"), (kit.A_NOT_HELPFUL, "11"), (kit.A_ESCALATE, "7"),
                             (kit.A_RESOLVE, "7"), (kit.A_TAKE, "7")):
        body, headers = interactive_request(SECRET, block_action(
            user="U0AGENT", action_id=action_id, value=value, channel="C1", message_ts="5.0", thread_ts="1.0"))
        assert (await http.post("/slack/interactivity", content=body, headers=headers)).status_code == 200
    await channel.drain()
    assert [c[0] for c in host.calls] == ["send_suggestion", "not_helpful", "escalate", "resolve", "take"]
    assert host.calls[2][1]["conversation_id"] == 7
    assert len(fake.ephemerals) == 5
    assert fake.ephemerals[0] == {"channel": "C1", "user": "U0AGENT", "text": host.notice, "thread_ts": "1.0"}

    body, headers = interactive_request(SECRET, block_action(
        user="U0AGENT", action_id=kit.A_EDIT, value="11", channel="C1", message_ts="5.0", thread_ts="1.0"))
    await http.post("/slack/interactivity", content=body, headers=headers)
    [opened] = fake.views
    assert opened["trigger_id"] == "trigger-5.0"
    assert opened["view"]["blocks"][0]["element"]["initial_value"] == "Prefilled <b>text</b>"
    assert json.loads(opened["view"]["private_metadata"]) == {"c": 7, "s": "11", "ch": "C1", "th": "1.0"}

    body, headers = command_request(SECRET, user="U0AGENT", text="queue")
    resp = await http.post("/slack/commands", content=body, headers=headers)
    assert resp.status_code == 200 and resp.text == "you said queue"


@pytest.fixture
async def api(fake: FakeSlack) -> SlackApi:
    return SlackApi(make_client(token="xoxb-test-token", base_url=fake.base_url, timeout=0.5))


@pytest.mark.parametrize(("status", "error", "kind", "retry_after"), [
    (500, None, TransientSendError, None),
    (503, None, TransientSendError, None),
    (429, None, TransientSendError, 7.0),
    (200, "channel_not_found", PermanentSendError, None),
    (200, "not_in_channel", PermanentSendError, None),
    (200, "ratelimited", TransientSendError, None),
])
async def test_api_errors_are_mapped(api: SlackApi, fake: FakeSlack, status: int, error: str | None,
                                     kind: type[Exception], retry_after: float | None) -> None:
    fake.fail_next("chat.postMessage", status, error=error, retry_after=7 if status == 429 else None)
    with pytest.raises(kind) as info:
        await api.post_message(channel="C1", text="x")
    assert type(info.value) is kind
    assert getattr(info.value, "retry_after", None) == retry_after
    assert await api.post_message(channel="C1", text="x")  # the next call goes through


async def test_timeouts_connection_errors_and_bad_tokens(api: SlackApi, fake: FakeSlack) -> None:
    fake.stall_next("chat.postMessage", 1.5)
    with pytest.raises(TransientSendError) as info:
        await api.post_message(channel="C1", text="slow", metadata={"event_type": "t", "event_payload": {
            "outbox": "41"}})
    assert info.value.code == "timeout"
    # The stalled post was stored: a retry finds it by its marker instead of posting twice.
    assert await api.find_marked(channel="C1", thread_ts=None, marker="41") == fake.posts("C1")[0]["ts"]
    assert await api.find_marked(channel="C1", thread_ts=None, marker="42") is None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = SlackApi(make_client(token="xoxb-test-token", base_url=f"http://127.0.0.1:{port}/api/", timeout=0.5))
    with pytest.raises(TransientSendError) as info:
        await dead.post_message(channel="C1", text="x")
    assert info.value.code == "connection"
    wrong = SlackApi(make_client(token="xoxb-wrong", base_url=fake.base_url, timeout=0.5))
    with pytest.raises(PermanentSendError) as info:
        await wrong.post_message(channel="C1", text="x")
    assert info.value.code == "invalid_auth"
    assert await wrong.user_name("U0AGENT") is None  # unknown / unreachable users have no name
    assert await api.user_name("U0AGENT") == "Ann"


def test_channel_refuses_to_start_without_a_signing_secret(settings_factory: Callable[..., Settings]) -> None:
    with pytest.raises(ValueError, match="SIGNING_SECRET"):
        SlackChannel(settings_factory(slack_bot_token="xoxb-test-token"), host=RecordingHost())


def test_blocks_escape_customer_text_and_carry_only_ids() -> None:
    text, blocks = kit.customer_post(kit.CustomerPost(
        conversation_id=3, author="Dana <script>", text="I paid & got <nothing>",
        suggestions=[kit.SuggestionView(ref="9", article_id="refunds", title="Refunds", preview="x" * 5000,
                                        confidence=0.734, url="https://kb.example/refunds")]))
    dumped = json.dumps(blocks)
    assert "&lt;nothing&gt;" in dumped and "<nothing>" not in dumped and "&amp;" in dumped
    assert "73% confident" in dumped and "<https://kb.example/refunds|Refunds>" in dumped
    values = [el["value"] for b in blocks if b["type"] == "actions" for el in b["elements"]]
    assert values == ["9", "9", "9", "3", "3", "3"]
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in blocks)
    _, card = kit.card(kit.CardInfo(conversation_id=3, customer="Dana", channel="sms", state="assigned",
                                    priority="high", assignee="U1", opted_out=True))
    fields = json.dumps(card[1]["fields"])
    for expected in ("Dana", "sms", "opted out", "assigned", "high", "<@U1>"):
        assert expected in fields


@pytest.mark.parametrize(("text", "verb", "conv", "target", "error"), [
    ("", "help", None, None, False),
    ("kb where is my parcel", "kb", None, None, False),
    ("kb", "kb", None, None, True),
    ("queue", "queue", None, None, False),
    ("resolve #42", "resolve", 42, None, False),
    ("assign 42 <@U123ABC|ann>", "assign", 42, "U123ABC", False),
    ("assign <@U123ABC>", "assign", None, "U123ABC", False),
    ("assign 42 @ann", "assign", None, None, True),
    ("assign 42", "assign", None, None, True),
    ("dance", "unknown", None, None, True),
])
def test_parse_command(text: str, verb: str, conv: int | None, target: str | None, error: bool) -> None:
    cmd = parse_command(text)
    assert cmd.verb == verb and (cmd.error is not None) == error
    if not error:
        assert (cmd.conversation_id, cmd.target_user) == (conv, target)


def test_a_suggestion_read_with_an_earlier_turn_says_which() -> None:
    view = kit.SuggestionView(ref="9", article_id="returns-policy", title="Our return policy", preview="30 days",
                              confidence=0.8)
    _, blocks = kit.customer_post(kit.CustomerPost(conversation_id=3, author="Dana", text="how long do I have?",
                                                   suggestions=[view], read_with="I want to return the <lamp>"))
    dumped = json.dumps(blocks)
    assert "read with their earlier message: I want to return the &lt;lamp&gt;" in dumped
    _, alone = kit.customer_post(kit.CustomerPost(conversation_id=3, author="Dana", text="hi", suggestions=[view]))
    assert "read with" not in json.dumps(alone)


async def test_an_event_arriving_while_auth_test_fails_is_refused_so_slack_retries_it(
    slack: Any, fake: FakeSlack
) -> None:
    """Found by the chaos soak: bolt's own single-team check answered 200 to an event when auth.test
    failed (a 503 or 429 from Slack), so the agent's thread reply was dropped and never retried."""
    channel, host, http = slack
    event = {"type": "message", "channel": "C1", "user": "U0AGENT", "text": "hello", "ts": "2.0", "thread_ts": "1.0"}
    for status in (503, 429):
        fake.fail_next("auth.test", status, retry_after=1 if status == 429 else None)
        body, headers = event_request(SECRET, event, event_id="EvA")
        assert (await http.post("/slack/events", content=body, headers=headers)).status_code >= 500
        assert host.calls == []
    body, headers = event_request(SECRET, event, event_id="EvA", retry=1)
    assert (await http.post("/slack/events", content=body, headers=headers)).status_code == 200
    assert [c[0] for c in host.calls] == ["thread_reply"]
    body, headers = event_request(SECRET, event, event_id="EvB")
    assert (await http.post("/slack/events", content=body, headers=headers)).status_code == 200
    assert len(fake.called("auth.test")) == 1  # cached after the first success
