"""The widget's people-side offers in real Chromium: 👍/👎 under a bot answer (a 👎 counts as a miss),
a CSAT survey's 1-5 buttons whose click is stored as the rating, then the optional comment."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import expect
from sqlalchemy import select

from bot.csat_models import CsatSurvey
from bot.customers_admin import set_profile
from bot.messages import utcnow
from bot.models import Conversation
from bot.people_sweep import PeopleSweep
from bot.store import unanswered_questions
from tests.browser.conftest import LiveApp
from tests.browser.test_widget import MSG, ask, open_page, pick_questions

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def daytime_zone() -> str:
    """A time zone where it is daytime now (surveys are never sent in quiet hours)."""
    for name in ("UTC", "America/Los_Angeles", "Asia/Tokyo", "Europe/Berlin", "America/New_York", "Asia/Kolkata"):
        if 10 <= datetime.now(ZoneInfo(name)).hour < 19:
            return name
    return "Pacific/Auckland"


async def test_thumbs_down_and_a_survey_rating_from_the_widget(browser: Any, live_app: LiveApp) -> None:
    question, answer, _ = await pick_questions(live_app)
    context, page = await open_page(browser, live_app)
    try:
        await ask(page, question)
        bot = page.locator(f"{MSG}.sb-bot")
        await expect(bot.locator(".sb-text")).to_have_text(answer, timeout=20_000)
        down = bot.get_by_role("button", name="Not helpful")
        await down.click()
        await expect(down).to_have_attribute("aria-pressed", "true")
        async with live_app.parts.sessionmaker() as s:
            assert question in await unanswered_questions(session=s)
            conv = (await s.execute(select(Conversation).order_by(Conversation.id.desc()).limit(1))).scalar_one()

        # A person answers and resolves; the survey arrives with its buttons.
        agents = live_app.parts.agents
        await agents.reply(conv.id, text="Here is more detail.", author_id="U1", author_name="Ann")
        await agents.resolve(conv.id, by="U1")
        async with live_app.parts.sessionmaker() as s, s.begin():
            await set_profile(s, customer_id=conv.customer_id, timezone=daytime_zone())
        sweep = PeopleSweep(settings=live_app.settings, sessionmaker=live_app.parts.sessionmaker, agents=agents)
        await sweep.run(now=utcnow() + timedelta(minutes=6))
        survey_msg = page.locator(f"{MSG}.sb-system").filter(has_text=live_app.settings.csat_question)
        await expect(survey_msg).to_have_count(1, timeout=15_000)
        await survey_msg.get_by_role("button", name="Rate 4 of 5").click()
        await expect(page.locator(f"{MSG}.sb-system .sb-text").last).to_have_text(live_app.settings.csat_thanks,
                                                                                  timeout=15_000)
        async with live_app.parts.sessionmaker() as s:
            survey = (await s.execute(select(CsatSurvey).where(CsatSurvey.conversation_id == conv.id))).scalar_one()
            assert (survey.score, survey.status) == (4, "answered")
            assert (await s.get(Conversation, conv.id)).state == "resolved"  # type: ignore[union-attr]
        # The optional comment under the rating.
        await survey_msg.get_by_role("textbox", name="Comment").fill("quick and kind")
        await survey_msg.get_by_role("button", name="Send comment").click()
        await expect(survey_msg).to_contain_text("Thanks for the comment.", timeout=15_000)
        async with live_app.parts.sessionmaker() as s:
            survey = (await s.execute(select(CsatSurvey).where(CsatSurvey.conversation_id == conv.id))).scalar_one()
            assert (survey.score, survey.comment) == (4, "quick and kind")
        # A reload does not offer the rating again (a second number would be an ordinary message).
        await page.reload()
        await expect(page.locator("#sb-status")).to_have_attribute("data-state", "open", timeout=15_000)
        await expect(survey_msg).to_have_count(1, timeout=15_000)
        await expect(survey_msg.get_by_role("button", name="Rate 4 of 5")).to_have_count(0)
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()


async def test_the_handoff_offers_an_optional_contact_form(browser: Any, live_app: LiveApp) -> None:
    from bot.models import Customer

    context, page = await open_page(browser, live_app)
    try:
        await page.locator("#sb-human").click()
        notice = page.locator(f"{MSG}.sb-system").filter(has_text=live_app.settings.handoff_message)
        await expect(notice).to_have_count(1, timeout=15_000)
        await notice.get_by_label("Email or phone").fill("not a number")
        await notice.get_by_role("button", name="Send").click()
        await expect(page.locator("#sb-error")).to_contain_text("not a phone number")
        await notice.get_by_label("Email or phone").fill("+1 415 555 0142")
        await notice.get_by_role("button", name="Send").click()
        await expect(notice).to_contain_text("we'll use it to reach you")
        async with live_app.parts.sessionmaker() as s:
            phones = list((await s.execute(select(Customer.phone).where(Customer.phone.is_not(None)))).scalars())
        assert "+14155550142" in phones
        # a reload does not offer it again
        await page.reload()
        await expect(page.locator("#sb-status")).to_have_attribute("data-state", "open", timeout=15_000)
        await expect(page.locator(f"{MSG} .sb-contact input")).to_have_count(0)
        assert page.errors == []  # type: ignore[attr-defined]
    finally:
        await context.close()
