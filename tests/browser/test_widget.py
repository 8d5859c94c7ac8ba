"""The widget in a real headless Chromium against the full app (sample KB, real model, worker running)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select, update

from bot import store
from bot.messages import utcnow
from bot.models import OutboxEntry, OutboxStatus
from kb_index.threshold import threshold_in_force
from tests.browser.conftest import LiveApp, sample_questions

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MSG = "#sb-log .sb-msg"


async def pick_questions(live: LiveApp) -> tuple[str, str, str]:
    """A question the KB answers confidently (and correctly), and one it does not know, after it."""
    kb = live.parts.kb
    threshold = threshold_in_force(live.settings.answer_threshold, kb).value
    answerable = None
    for q in sample_questions():
        if q["expected"] is None:
            continue
        hits = await kb.search(q["text"])
        if hits and hits[0].article_id == q["expected"] and hits[0].confidence >= threshold:
            answerable = (q["text"], hits[0].answer)
            break
    assert answerable is not None, "no sample question is answered confidently by the sample KB"
    for q in sample_questions():
        if q["expected"] is not None:
            continue
        hits = await kb.search(q["text"], history=[answerable[0]])
        if not hits or hits[0].confidence < threshold:
            return answerable[0], answerable[1], q["text"]
    raise AssertionError("every out-of-scope sample question clears the answer threshold")


async def open_page(browser: Any, live: LiveApp, width: int = 1024, height: int = 768) -> tuple[Any, Page]:
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors  # type: ignore[attr-defined]
    await page.goto(live.url + "/")
    await expect(page.locator("#sb-status")).to_have_attribute("data-state", "open", timeout=15_000)
    return context, page


async def ask(page: Page, text: str) -> None:
    await page.locator("#sb-input").fill(text)
    await page.locator("#sb-input").press("Enter")


async def transcript(page: Page) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = await page.locator(MSG).evaluate_all(
        "els => els.map(e => [e.getAttribute('data-id') || '', e.className, e.querySelector('.sb-text').textContent])"
    )
    return [(i, " ".join(c for c in cls.split() if c.startswith("sb-") and c != "sb-msg"), t) for i, cls, t in rows]


async def test_answer_handoff_and_reload_show_the_whole_conversation_once(browser: Any, live_app: LiveApp) -> None:
    question, answer, unknown = await pick_questions(live_app)
    handoff = live_app.settings.handoff_message
    context, page = await open_page(browser, live_app)
    try:
        # the demo page opens the widget; focus lands in the input with the keyboard
        await expect(page.locator("#sb-widget")).to_have_attribute("data-open", "true")
        await ask(page, question)
        await expect(page.locator(f"{MSG}.sb-bot")).to_have_count(1, timeout=20_000)
        await expect(page.locator(f"{MSG}.sb-bot .sb-text")).to_have_text(answer)
        await expect(page.locator("#sb-typing")).to_be_hidden()

        await ask(page, unknown)
        await expect(page.locator(f"{MSG}.sb-system .sb-text")).to_have_text(handoff, timeout=20_000)
        expected = [("sb-customer", question), ("sb-bot", answer), ("sb-customer", unknown), ("sb-system", handoff)]
        await expect(page.locator(MSG)).to_have_count(4)
        before = await transcript(page)
        assert [(k, t) for _, k, t in before] == expected
        ids = [int(i) for i, _, _ in before]
        assert ids == sorted(ids) and len(set(ids)) == 4

        await page.screenshot(path="/tmp/widget.png")

        # reload: the cached transcript plus the server's history after the last seen id, once each
        await page.reload()
        await expect(page.locator("#sb-status")).to_have_attribute("data-state", "open", timeout=15_000)
        await page.wait_for_timeout(500)  # let the resume answer arrive
        assert await transcript(page) == before

        # lose the browser's cached copy (keep the session): everything comes back from the server
        await page.evaluate("() => { for (const k of Object.keys(localStorage)) "
                            "if (k.endsWith(':log') || k.endsWith(':last')) localStorage.removeItem(k); }")
        await page.reload()
        await expect(page.locator(MSG)).to_have_count(4, timeout=15_000)
        await page.wait_for_timeout(300)
        assert await transcript(page) == before

        # the conversation is waiting for a person, and the store holds each message once
        rows = await live_app.parts.pipeline.history(
            _address(await page.evaluate("() => Object.entries(localStorage).find(([k]) => k.endsWith(':token'))[1]"))
        )
        assert [(r.author_kind, r.text) for r in rows] == [
            ("customer", question), ("bot", answer), ("customer", unknown), ("system", handoff)
        ]
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()


async def test_talk_to_a_human_button_and_safe_text(browser: Any, live_app: LiveApp) -> None:
    context, page = await open_page(browser, live_app, width=360, height=640)
    try:
        hostile = '<img src=x onerror="window.__pwned=1"> see https://example.com/help?a=1&b=2.'
        await ask(page, hostile)
        mine = page.locator(f"{MSG}.sb-customer .sb-text")
        await expect(mine).to_have_text(hostile)
        assert await page.locator("#sb-log img").count() == 0
        link = page.locator(f"{MSG}.sb-customer a")
        await expect(link).to_have_attribute("href", "https://example.com/help?a=1&b=2")
        await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
        await expect(page.locator(f"{MSG}.sb-customer")).to_have_attribute("data-id", re.compile(r"^\d+$"))

        # keyboard: Tab from the input reaches Send, then the human button, each with a name
        await page.locator("#sb-input").focus()
        await page.keyboard.press("Tab")
        assert await page.evaluate("() => document.activeElement.shadowRoot?.activeElement?.id") == "sb-send"
        await page.keyboard.press("Tab")
        assert await page.evaluate("() => document.activeElement.shadowRoot?.activeElement?.id") == "sb-human"
        await expect(page.locator("#sb-human")).to_have_text("Talk to a human")
        await expect(page.locator("#sb-send")).to_have_attribute("aria-label", "Send message")
        await expect(page.locator("#sb-log")).to_have_attribute("aria-live", "polite")

        # the conversation may have been handed off by the first message already; a fresh one has not
        await page.keyboard.press("Enter")  # presses "Talk to a human"
        await page.wait_for_timeout(300)
        await page.screenshot(path="/tmp/widget-360.png")
        assert await page.evaluate("() => window.__pwned") is None
        width = await page.locator("#sb-panel").evaluate("e => e.getBoundingClientRect().width")
        assert width <= 360
    finally:
        await context.close()


async def test_human_button_hands_off_a_fresh_conversation(browser: Any, live_app: LiveApp) -> None:
    context, page = await open_page(browser, live_app)
    try:
        await page.locator("#sb-human").click()
        await expect(page.locator(f"{MSG}.sb-system .sb-text")).to_have_text(
            live_app.settings.handoff_message, timeout=15_000
        )
    finally:
        await context.close()


async def test_too_long_message_shows_an_inline_error_and_the_chat_goes_on(browser: Any, live_app: LiveApp) -> None:
    context, page = await open_page(browser, live_app)
    try:
        limit = live_app.settings.web_max_message_chars
        await page.locator("#sb-input").fill("x" * (limit + 1))
        await page.locator("#sb-send").click()
        await expect(page.locator("#sb-error")).to_be_visible()
        await expect(page.locator("#sb-error")).to_contain_text(str(limit))
        await expect(page.locator(f"{MSG}.sb-failed")).to_have_count(1)
        await expect(page.locator("#sb-status")).to_have_attribute("data-state", "open")
        await ask(page, "hello there")
        await expect(page.locator(f"{MSG}.sb-customer[data-id]")).to_have_count(1)
    finally:
        await context.close()


async def droppable_socket(page: Any) -> dict[str, Any]:
    """Route the page's chat socket through Playwright, so a test can cut it (close every socket in
    ``state["routes"]``) and refuse reconnects while ``state["down"]`` is true."""
    state: dict[str, Any] = {"down": False, "routes": []}

    async def route(ws: Any) -> None:
        if state["down"]:
            await ws.close(code=1012, reason="server restarting (test)")
            return
        ws.connect_to_server()
        state["routes"].append(ws)

    await page.route_web_socket(re.compile(r".*/ws/chat.*"), route)
    return state


async def test_a_dropped_socket_reconnects_and_queued_messages_are_sent_once(browser: Any, live_app: LiveApp) -> None:
    """The socket goes through a Playwright WebSocket route, so the test can cut it and refuse reconnects."""
    context = await browser.new_context(viewport={"width": 1024, "height": 768})
    page = await context.new_page()
    state = await droppable_socket(page)
    try:
        await page.goto(live_app.url + "/")
        await expect(page.locator("#sb-status")).to_have_attribute("data-state", "open", timeout=15_000)
        state["down"] = True
        for ws in state["routes"]:
            await ws.close(code=1012, reason="dropped (test)")
        await expect(page.locator("#sb-status")).to_have_attribute("data-state", "closed", timeout=5_000)
        await ask(page, "I wrote this while the connection was down")
        await expect(page.locator(f"{MSG}.sb-pending")).to_have_count(1)
        await page.wait_for_timeout(1500)  # a few refused reconnects (backoff)
        state["down"] = False
        await expect(page.locator("#sb-status")).to_have_attribute("data-state", "open", timeout=20_000)
        await expect(page.locator(f"{MSG}.sb-customer[data-id]")).to_have_count(1, timeout=10_000)
        await expect(page.locator(f"{MSG}.sb-customer")).to_have_count(1)
        await expect(page.locator(f"{MSG}.sb-pending")).to_have_count(0)
    finally:
        await context.close()


def _address(token: str) -> Any:
    from bot.messages import Address

    return Address("web", token.strip('"').split(".")[1])


async def test_the_widget_never_puts_its_token_in_a_url(browser: Any, live_app: LiveApp) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    try:
        await page.goto(live_app.url + "/")
        await expect(page.locator("#sb-status")).to_have_attribute("data-state", "open", timeout=15_000)
        await ask(page, "hello there")
        await expect(page.locator(MSG)).not_to_have_count(0, timeout=15_000)
    finally:
        await context.close()
    assert sockets and all(url.endswith("/ws/chat") and "token" not in url for url in sockets), sockets


async def test_a_card_number_is_shown_masked_once_the_server_acks(browser: Any, live_app: LiveApp) -> None:
    """Issue 12: the widget shows what the server stored (card number masked), in the page and in its cache."""
    context, page = await open_page(browser, live_app)
    try:
        await ask(page, "My card number is 4111 1111 1111 1111, why was I charged twice??")
        mine = page.locator(f"{MSG}.sb-customer[data-id] .sb-text")
        masked = ("My card number is \u2022\u2022\u2022\u2022 \u2022\u2022\u2022\u2022 \u2022\u2022\u2022\u2022 1111, "
                  "why was I charged twice??")
        await expect(mine).to_have_text(masked, timeout=15_000)
        stored = await page.evaluate("() => JSON.stringify(Object.assign({}, localStorage))")
        assert "4111 1111 1111 1111" not in stored and "1111, why was I charged" in stored
        await page.reload()
        await expect(page.locator(f"{MSG}.sb-customer .sb-text").first).to_have_text(masked, timeout=15_000)
        assert not page.errors  # type: ignore[attr-defined]
    finally:
        await context.close()


async def test_a_reply_pushed_while_the_socket_was_down_is_shown_after_the_reconnect(
        browser: Any, live_app: LiveApp) -> None:
    """The soak's lost agent replies: a reply stored before the customer's next message (a lower id)
    but sent by the worker while the widget was reconnecting, to no socket. The widget resumes from
    the server's cursor, not from the highest id pushed to it, so the reply shows, once, in id order."""
    parts = live_app.parts
    context = await browser.new_context(viewport={"width": 1024, "height": 768})
    page = await context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("pageerror", lambda e: page.errors.append(str(e)))  # type: ignore[attr-defined]
    state = await droppable_socket(page)
    try:
        await page.goto(live_app.url + "/")
        await expect(page.locator("#sb-status")).to_have_attribute("data-state", "open", timeout=15_000)
        await page.locator("#sb-human").click()
        await expect(page.locator(f"{MSG}.sb-system")).to_have_count(1, timeout=20_000)
        address = _address(await page.evaluate(
            "() => Object.entries(localStorage).find(([k]) => k.endsWith(':token'))[1]"))

        # the agent's reply is committed with its delivery held back (as behind a slow or killed worker)
        async with parts.sessionmaker() as s, s.begin():
            identity = await store.find_identity(s, address=address)
            assert identity is not None
            conv = await store.open_conversation(s, identity_id=identity.id)
            assert conv is not None
            reply = await parts.pipeline.conversations.say(s, conv, "Hi, Ana here.", author_kind="agent",
                                                           author_name="Ana")
            await s.execute(update(OutboxEntry).where(OutboxEntry.message_id == reply.id)
                            .values(next_attempt_at=utcnow() + timedelta(hours=1)))
        await ask(page, "hello? is anyone there?")  # its mirror (a higher id) is pushed at once
        await expect(page.locator(f"{MSG}.sb-customer[data-id]")).to_have_count(1, timeout=10_000)

        state["down"] = True
        for ws in state["routes"]:
            await ws.close(code=1012, reason="dropped (test)")
        await expect(page.locator("#sb-status")).to_have_attribute("data-state", "closed", timeout=5_000)
        async with parts.sessionmaker() as s, s.begin():
            await s.execute(update(OutboxEntry).where(OutboxEntry.message_id == reply.id)
                            .values(next_attempt_at=utcnow()))
        parts.worker.wake()
        for _ in range(100):  # the worker sends it to no socket and marks it done
            async with parts.sessionmaker() as s:
                status = (await s.execute(select(OutboxEntry.status)
                                          .where(OutboxEntry.message_id == reply.id))).scalar_one()
            if status == OutboxStatus.DELIVERED:
                break
            await page.wait_for_timeout(100)
        assert status == OutboxStatus.DELIVERED

        state["down"] = False
        await expect(page.locator("#sb-status")).to_have_attribute("data-state", "open", timeout=20_000)
        agent = page.locator(f"{MSG}.sb-agent")
        await expect(agent).to_have_count(1, timeout=10_000)
        await expect(agent.locator(".sb-text")).to_have_text("Hi, Ana here.")
        shown = await transcript(page)
        assert [int(i) for i, _, _ in shown] == sorted(int(i) for i, _, _ in shown)  # id order
        kinds = [k for _, k, _ in shown]
        assert kinds[:3] == ["sb-system", "sb-agent", "sb-customer"], shown
        await page.reload()
        await expect(page.locator(f"{MSG}.sb-agent")).to_have_count(1, timeout=15_000)
        assert await transcript(page) == shown
        assert not page.errors  # type: ignore[attr-defined]
    finally:
        await context.close()
