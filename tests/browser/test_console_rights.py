"""A person's data-protection rights in the console, in Chromium against the full app (worker running,
Slack pointed at the fake): a supervisor clicks Export (JSON) and gets the file; Erase asks for the
customer number, refuses a wrong one, then erases: the profile is empty, the bot's Slack posts read
"[erased]", and the audit log shows both. An agent sees neither button. Every page passes axe-core;
screenshots in test-results/console/."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from bot.audit import AuditEntry
from bot.console.users import add_user
from bot.customers_admin import set_profile
from bot.messages import Address, InboundMessage
from bot.models import Conversation, Message
from bot.slack_models import SlackThread
from tests.browser.conftest import LiveApp
from tests.browser.console_support import (  # noqa: F401
    PASSWORD,
    accessible,
    console_app,
    shot,
    sign_in,
    slack_fake,
)
from tests.fakes.slack import FakeSlack

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WORDS = "Where is my order? It is for Wren Calloway's birthday"


async def _customer(live: LiveApp) -> tuple[int, int]:
    """A web chat customer who wrote, asked for a person (the Slack card is posted) and has a profile."""
    pipeline = live.parts.pipeline
    receipt = await pipeline.receive(InboundMessage(sender=Address("web", "sess-wren"), platform_id="wren-1",
                                                    text=WORDS, display_name="Wren"))
    await pipeline.drain()
    await pipeline.request_human(Address("web", "sess-wren"))
    async with live.parts.sessionmaker() as s, s.begin():
        conv = await s.get(Conversation, receipt.conversation_id)
        assert conv is not None
        await set_profile(s, customer_id=conv.customer_id, display_name="Wren Calloway", email="wren@example.net")
        return conv.customer_id, conv.id


async def _until(check: Any, seconds: float = 20.0) -> None:
    """Wait for `check()` (a function or a coroutine function) to hold."""
    async def holds() -> bool:
        result = check()
        return bool(await result if asyncio.iscoroutine(result) else result)

    for _ in range(int(seconds * 10)):
        if await holds():
            return
        await asyncio.sleep(0.1)
    assert await holds()


async def test_a_supervisor_exports_then_erases_a_customer(browser: Any, console_app: LiveApp,  # noqa: F811
                                                           slack_fake: FakeSlack, tmp_path: Path) -> None:  # noqa: F811
    live = console_app
    customer_id, conv_id = await _customer(live)

    async def card_posted() -> bool:  # the Slack desk recorded its card: erasure has a post to rewrite
        async with live.parts.sessionmaker() as s:
            return bool(await s.scalar(select(SlackThread.card_ts).where(SlackThread.conversation_id == conv_id)))

    await _until(card_posted)
    async with live.parts.sessionmaker() as s, s.begin():
        await add_user(s, username="bob", password=PASSWORD, role="agent", display_name="Bob")

    ctx = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        await sign_in(page, live.url, "ann")

        # the profile shows the supervisor's two buttons; Export downloads the person's data
        await page.goto(f"{live.url}/console/customers/{customer_id}")
        await expect(page.get_by_role("heading", name="Data protection")).to_be_visible()
        await accessible(page)
        await shot(page, "customer-rights")
        async with page.expect_download() as downloading:
            await page.get_by_role("button", name="Export (JSON)").click()
        download = await downloading.value
        assert download.suggested_filename == f"customer-{customer_id}.json"
        saved = tmp_path / download.suggested_filename
        await download.save_as(saved)
        data = json.loads(saved.read_text(encoding="utf-8"))
        assert data["customer_id"] == customer_id and data["profiles"][0]["email"] == "wren@example.net"
        assert WORDS in [m["text"] for m in data["messages"]]

        # Erase asks for the customer number first; a wrong one erases nothing
        await page.get_by_role("button", name="Erase…").click()
        await expect(page.get_by_role("heading", name=f"Erase customer #{customer_id}")).to_be_visible()
        await accessible(page)
        confirm = page.get_by_label(f"Type the customer number, {customer_id}, to confirm")
        await confirm.fill(str(customer_id + 100))
        await page.get_by_role("button", name=f"Erase customer #{customer_id}").click()
        await expect(page.locator(".flash.bad")).to_contain_text("Nothing was erased.")
        await shot(page, "customer-erase-confirm")
        await confirm.fill(str(customer_id))
        await page.get_by_role("button", name=f"Erase customer #{customer_id}").click()
        await expect(page.locator(".flash.good")).to_contain_text(f"Customer #{customer_id} erased:")
        await expect(page.get_by_role("heading", name=f"Customer #{customer_id}")).to_contain_text("no name")
        await accessible(page)
        await shot(page, "customer-erased")

        # the bot's posts in the person's Slack thread now read "[erased]" (the worker delivered it)
        await _until(lambda: any(c.params.get("text") == "[erased]" for c in slack_fake.calls
                                 if c.method == "chat.update"))
        async with live.parts.sessionmaker() as s:
            texts = (await s.scalars(select(Message.text).where(Message.conversation_id == conv_id))).all()
            actions = (await s.scalars(select(AuditEntry.action).where(
                AuditEntry.target_kind == "customer", AuditEntry.target_id == str(customer_id),
                AuditEntry.actor == "console:ann").order_by(AuditEntry.id))).all()
        assert texts and set(texts) == {"[erased]"}
        assert list(actions) == ["customer.export", "customer.erase"]
        await page.get_by_role("link", name="Audit log").click()
        await expect(page.locator("main")).to_contain_text("customer.erase")

        # an agent sees the profile but neither button
        agent_ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
        agent = await agent_ctx.new_page()
        try:
            await sign_in(agent, live.url, "bob")
            await agent.goto(f"{live.url}/console/customers/{customer_id}")
            await expect(agent.get_by_role("heading", name=f"Customer #{customer_id}")).to_be_visible()
            await expect(agent.get_by_role("button", name="Export (JSON)")).to_have_count(0)
            await expect(agent.get_by_role("button", name="Erase…")).to_have_count(0)
            refused = await agent.goto(f"{live.url}/console/customers/{customer_id}/erase")
            assert refused is not None and refused.status == 403
            await expect(agent.get_by_role("alert")).to_contain_text("Only supervisors")
        finally:
            await agent_ctx.close()
        assert errors == []
    finally:
        await ctx.close()
