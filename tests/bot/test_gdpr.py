"""GDPR export and erasure through the CLI, against the real Slack desk and the fake Slack Web API:
after `customers erase` no column of any table holds the person's contact details or words, the fake
Slack received chat.update "[erased]" for our posts in their thread, and the report figures are unchanged."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from bot import audit
from bot import customers_admin as admin
from bot.cli import app
from bot.messages import utcnow
from bot.models import Conversation
from bot.reports import build_report
from channels import slack_blocks as kit
from handoff.sla import SLAPolicy
from kb_index.models import KBPhrasing
from tests.bot.desk.slack_rig import SECRET, Rig
from tests.bot.privacy_scan import every_cell, found

EMAIL, PHONE = "dana.planted@example.org", "+14155550187"
FIRST = "my parcel is late, card 4111 1111 1111 1111 and my iban DE89 3704 0044 0532 0130 00"
SECOND = "also where is the refund, Dana here"


async def report_dict(rig: Rig, now: datetime) -> dict[str, Any]:
    async with rig.sm() as s:
        r = await build_report(s, since=now - timedelta(days=2), until=now + timedelta(minutes=1),
                               policy=SLAPolicy.from_settings(rig.settings), now=now)
    data = r.to_dict()
    data["unanswered"] = sum(u["count"] for u in data.get("unanswered") or [])  # the labels are the words
    return data


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def rig(rig_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
              request: pytest.FixtureRequest) -> Rig:
    url = request.getfixturevalue("pg_url") if request.param == "postgres" else None
    made: Rig = await rig_factory(db_url=url)
    url = url or f"sqlite+aiosqlite:///{tmp_path / 'slack.db'}"
    for key, value in {"DATABASE_URL": url, "ENVIRONMENT": "test",
                       "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SECRET}.items():
        monkeypatch.setenv(key, value)
    return made


async def cli(*args: str) -> Any:
    return await asyncio.to_thread(CliRunner().invoke, app, ["customers", *args])


async def test_export_then_erase_everywhere_with_reports_unchanged(rig: Rig) -> None:
    conv_id = await rig.customer(FIRST, who="sess-dana")
    [sugg, *_] = await rig.suggestions(conv_id)
    await rig.click(kit.A_SEND, str(sugg.id), conv_id=conv_id)  # learned: their (masked) words -> the article
    await rig.customer(SECOND, who="sess-dana")
    await rig.reply("Thanks Dana, refund started", conv_id=conv_id)
    async with rig.sm() as s, s.begin():
        conv = await s.get(Conversation, conv_id)
        assert conv is not None
        await admin.set_profile(s, customer_id=conv.customer_id, email=EMAIL, phone=PHONE, notes="called twice")
        customer_id = conv.customer_id
    async with rig.sm() as s:
        assert (await s.execute(select(KBPhrasing))).scalars().all()  # something to forget
    await rig.agents.resolve(conv_id, by="U0AGENT")
    await rig.settle()
    now = utcnow() + timedelta(seconds=5)
    before = await report_dict(rig, now)
    assert (before["conversations"], before["handed_off"], before["resolved"]) == (1, 1, 1)
    assert before["unanswered"] >= 1

    exported = await cli("export", "--email", EMAIL.upper())
    assert exported.exit_code == 0, exported.output
    data = json.loads(exported.stdout)
    assert data["customer_id"] == customer_id and data["profiles"][0]["email"] == EMAIL
    assert {m["text"] for m in data["messages"]} >= {SECOND, "Thanks Dana, refund started"}
    assert "4111 1111 1111 1111" not in exported.stdout  # never stored, so never exported
    assert data["identities"][0]["address"] == "sess-dana" and data["events"] and data["deliveries"]

    refused = await cli("erase", str(customer_id))
    assert refused.exit_code == 2 and "--yes" in refused.output
    erased = await cli("erase", "--phone", "(415) 555-0187", "--yes")
    assert erased.exit_code == 0, erased.output
    counts = json.loads(erased.stdout)
    assert counts["customer_id"] == customer_id and counts["phrasings"] >= 1 and counts["slack_posts"] >= 3

    slack_before = len(rig.fake.calls)
    await rig.settle()
    updates = [c.params for c in rig.fake.calls[slack_before:] if c.method == "chat.update"]
    thread = await rig.thread(conv_id)
    # distinct posts: under load a call can outlast the client's 0.5 s timeout and be retried (idempotent)
    assert {u["ts"] for u in updates} >= {thread.card_ts} and len({u["ts"] for u in updates}) == counts["slack_posts"]
    assert all(u["text"] == "[erased]" for u in updates)

    cells = await every_cell(rig.sm)
    leaks = found([EMAIL, PHONE, "sess-dana", "Dana", "parcel is late", "where is the refund", "refund started",
                   "called twice", "DE89", "4111"],
                  [(f"{t}.{c}", v) for t, c, v in cells])
    assert leaks == []
    assert await report_dict(rig, now) == before

    async with rig.sm() as s:
        entries = await audit.recent(s, target_kind="customer", target_id=customer_id)
    assert [e.action for e in entries] == ["customer.erase", "customer.export"]
    assert all(EMAIL not in json.dumps(e.detail) for e in entries)
    again = await cli("erase", "--email", EMAIL, "--yes")
    assert again.exit_code == 1 and "no customer with that email" in again.output
