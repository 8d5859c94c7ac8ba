"""Slack formatting both ways (issue 13, class 4): every field we fill with text we did not write is escaped,
links are http(s) only and cannot break out of ``<url|label>``, and agents' replies reach customers as
plain text."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bot.settings import Settings
from channels import slack_blocks as kit
from channels.slack import SlackChannel
from channels.slack_format import link, safe_url, to_plain
from tests.channels.test_slack import SECRET, RecordingHost
from tests.fakes.slack import FakeSlack, event_request, running

HOSTILE = "<!channel> <!here> <@U0BOSS> <https://evil.example|click> & <!subteam^S1|@admins>"
LIVE = ("<!channel>", "<!here>", "<@U0BOSS>", "<https://evil", "<!subteam")


def _live(dumped: str) -> list[str]:
    return [m for m in LIVE if m in dumped]


def test_every_builder_escapes_hostile_text_in_blocks_and_the_text_fallback() -> None:
    built = [
        kit.customer_post(kit.CustomerPost(
            conversation_id=3, author=HOSTILE, text=HOSTILE,
            suggestions=[kit.SuggestionView(ref="9", article_id="a", title=HOSTILE, preview=HOSTILE, confidence=0.5,
                                            url="https://kb.example/a|<!channel>")],
            decision={"trigger": HOSTILE, "priority": HOSTILE, "evidence": HOSTILE},
            attachments=[{"url": "javascript:alert(1)", "content_type": HOSTILE}])),
        kit.card(kit.CardInfo(conversation_id=3, customer=HOSTILE, channel="sms", state="waiting",
                              priority="high", tags=[HOSTILE], reason=HOSTILE)),
        kit.notice("customer", HOSTILE, who=HOSTILE),
        kit.notice("problem", HOSTILE),
        kit.escalation_card({"conversation_id": 3, "priority": "high", "customer": {"display_name": HOSTILE,
                             "address": HOSTILE}, "trigger": HOSTILE, "evidence": HOSTILE, "summary": [HOSTILE],
                             "transcript": [{"author_name": HOSTILE, "text": HOSTILE}],
                             "bot_attempts": [{"query": HOSTILE, "suggestions": [{"title": HOSTILE}]}]}),
        kit.sla_page(kit.SlaPage(conversation_id=3, customer=HOSTILE, channel="sms", priority="high",
                                 state="waiting", clock="resolution", overdue="1 min", due="now",
                                 link="javascript:alert(1)")),
    ]
    for text, blocks in built:
        assert _live(text) == [], text
        assert _live(json.dumps(blocks)) == [], json.dumps(blocks)[:400]
        assert "<javascript:" not in json.dumps(blocks)
    attach = json.dumps(built[0][1])
    assert "<javascript:" not in attach and "<https://kb.example/a%7C%3C!channel%3E|" in attach


@pytest.mark.parametrize(("url", "expected"), [
    ("https://kb.example/a", "https://kb.example/a"),
    ("HTTP://kb.example/a?x=1&y=2", "HTTP://kb.example/a?x=1&amp;y=2"),
    ("https://kb.example/a|<!channel>", "https://kb.example/a%7C%3C!channel%3E"),
    ("https://kb.example/a b>c", "https://kb.example/a%20b%3Ec"),
    ("javascript:alert(1)", None), ("data:text/html,x", None), ("//kb.example/a", None), ("kb.example", None),
    ("https://", None), ("mailto:a@b.c", None), ("https://[::1", None), (None, None), (42, None),
])
def test_only_http_urls_become_links(url: object, expected: str | None) -> None:
    assert safe_url(url) == expected
    shown = link(url, "Title | <b>")
    assert shown == (f"<{expected}|Title \u2758 &lt;b&gt;>" if expected else "Title \u2758 &lt;b&gt;")


@pytest.mark.parametrize(("wire", "plain"), [
    ("a &lt;b&gt; &amp;amp; c", "a <b> &amp; c"),
    ("ask <@U9>", "ask @Nina"), ("ask <@U8|bob>", "ask @bob"), ("ask <@U7>", "ask @someone"),
    ("see <https://x.example/a|click here>", "see https://x.example/a"),
    ("see <https://x.example/a>", "see https://x.example/a"),
    ("mail <mailto:a@b.example|a@b.example>", "mail a@b.example"),
    ("<!here> and <!channel>", "@here and @channel"), ("in <#C1|general>", "in #general"),
    ("<!subteam^S1|@team> now", "@team now"), ("<!date^1700000000^{date}|Nov 14>", "Nov 14"),
])
def test_agent_replies_are_decoded_to_plain_text(wire: str, plain: str) -> None:
    assert to_plain(wire, {"U9": "Nina"}) == plain


@pytest.fixture
async def slack(settings_factory: Callable[..., Settings]) -> AsyncIterator[Any]:
    async with running(FakeSlack(users={"U0AGENT": "Ann", "U9": "Nina"})) as fake:
        settings = settings_factory(slack_bot_token="xoxb-test-token", slack_signing_secret=SECRET,
                                    slack_api_base_url=fake.base_url, slack_timeout=0.5)
        host = RecordingHost()
        channel = SlackChannel(settings, host=host)
        app = FastAPI()
        app.include_router(channel.router())
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            yield host, http
        await channel.aclose()


async def test_a_thread_reply_reaches_the_host_as_plain_text(slack: Any) -> None:
    host, http = slack
    event = {"type": "message", "channel": "C1", "user": "U0AGENT", "ts": "2.0", "thread_ts": "1.0",
             "text": "Hi &lt;3 ask <@U9> or see <https://help.example/r?a=1&amp;b=2|our page> &amp; more"}
    body, headers = event_request(SECRET, event, event_id="EvF1")
    assert (await http.post("/slack/events", content=body, headers=headers)).status_code == 200
    assert host.calls[0][1]["text"] == "Hi <3 ask @Nina or see https://help.example/r?a=1&b=2 & more"


def test_thread_link_is_the_one_permalink_builder() -> None:
    from channels.slack_format import thread_link

    assert thread_link("C123", "1712345678.000100") == "https://slack.com/archives/C123/p1712345678000100"
    assert thread_link(None, "1712345678.000100") is None and thread_link("C123", None) is None
