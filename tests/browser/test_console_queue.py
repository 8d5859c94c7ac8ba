"""The console queue in Chromium with a busy queue: the routed order, warning and breached SLA clocks
shown distinctly, filters applied without leaving the page, a change made elsewhere arriving live.
Its screenshot is the README's docs/console-queue.png (copied by hand from test-results/)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from bot.customers_admin import set_profile
from bot.messages import Address, utcnow
from bot.models import Conversation
from tests.browser.conftest import LiveApp
from tests.browser.console_support import PASSWORD, accessible, console_app, shot, slack_fake  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SEED = [  # name, channel, priority, minutes waiting, state, owner, tags
    ("Rosa Diaz", "sms", "urgent", 25, "escalated", None, ["vip-account"]),  # 25 of 15 min: breached
    ("Kai Tanaka", "web", "urgent", 13, "waiting", None, []),  # 13 of 15 min: warning
    ("Amara Okafor", "web", "high", 30, "assigned", "console:ann", ["billing"]),
    ("Lena Fischer", "sms", "normal", 50, "waiting", None, ["billing"]),
    ("Omar Haddad", "web", "low", 120, "waiting", None, []),
]


async def _seed(live: LiveApp) -> dict[str, int]:
    ids = {}
    now = utcnow()
    for i, (name, channel, prio, minutes, state, owner, tags) in enumerate(SEED):
        address = f"+1415555{i:04d}" if channel == "sms" else f"seed-session-{i}"
        await live.parts.pipeline.request_human(Address(channel, address))
        async with live.parts.sessionmaker() as s, s.begin():
            conv = (await s.scalars(select(Conversation).order_by(Conversation.id.desc()))).first()
            assert conv is not None
            conv.priority, conv.state, conv.tags = prio, state, tags
            conv.assignee_id, conv.assignee_name = owner, ("Ann" if owner else None)
            conv.handed_off_at = now - timedelta(minutes=minutes)
            conv.handoff_reason = {"escalated": "agent_escalation", "assigned": "asked_for_human"}.get(
                state, "low_confidence")
            await set_profile(s, customer_id=conv.customer_id, display_name=name, vip=bool(tags and i == 0))
            ids[name] = conv.id
    return ids


async def test_a_busy_queue_in_order_with_sla_marks_filters_and_live_changes(
        browser: Any, console_app: LiveApp) -> None:  # noqa: F811
    live = console_app
    ids = await _seed(live)
    ctx = await browser.new_context(viewport={"width": 1280, "height": 560})
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        await page.goto(live.url + "/console/login")
        await page.get_by_label("Username").fill("ann")
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_label("Password").press("Enter")  # the keyboard is enough
        rows = page.locator("tr[data-conversation]")
        await expect(rows).to_have_count(len(SEED))
        order = [int(await r.get_attribute("data-conversation") or 0) for r in await rows.all()]
        assert order == [ids[n] for n in ("Rosa Diaz", "Kai Tanaka", "Amara Okafor", "Lena Fischer", "Omar Haddad")]
        rosa = rows.filter(has_text="Rosa Diaz")
        await expect(rosa.locator(".sla-breached").first).to_contain_text("BREACHED")
        await expect(rows.filter(has_text="Kai Tanaka").locator(".sla-warning").first).to_contain_text("warning")
        await accessible(page)
        await shot(page, "queue-busy")

        # filters: the table changes in place (no navigation)
        await page.get_by_label("State").select_option("waiting")
        await expect(rows).to_have_count(3)
        await page.get_by_label("Tag").fill("billing")
        await page.get_by_label("Tag").press("Enter")
        await expect(rows).to_have_count(1)
        await expect(rows).to_contain_text("Lena Fischer")
        assert page.url == live.url + "/console"
        await page.get_by_label("Tag").fill("")
        await page.get_by_label("State").select_option("")
        await expect(rows).to_have_count(len(SEED))

        # resolved elsewhere (another desk, the CLI): gone from the open page without a reload
        await live.parts.agents.resolve(ids["Omar Haddad"], by="U-slack")
        await expect(rows).to_have_count(len(SEED) - 1, timeout=10_000)
        assert errors == []
    finally:
        await ctx.close()
        async with live.parts.sessionmaker() as s, s.begin():  # leave the shared app's queue empty
            for conv in (await s.scalars(select(Conversation).where(Conversation.id.in_(ids.values())))).all():
                conv.state = "resolved"
