"""The console's browser fixtures: the full app with a console supervisor, Slack pointed at the fake;
screenshots and the axe check."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Page, expect

from bot.console.users import add_user
from tests.browser.axe import serious_violations
from tests.browser.conftest import ROOT, LiveApp
from tests.fakes.slack import FakeSlack, running

SHOTS = ROOT / "test-results" / "console"
PASSWORD = "correct horse battery"
AGENTS = "C0AGENTS"


@pytest.fixture(scope="module")
async def slack_fake() -> AsyncIterator[FakeSlack]:
    async with running(FakeSlack(users={})) as fake:
        yield fake


@pytest.fixture(scope="module")
async def console_app(tmp_path_factory: pytest.TempPathFactory, browser_embedder: Any,
                      slack_fake: FakeSlack) -> AsyncIterator[LiveApp]:
    from bot.app import create_app
    from bot.migrate import upgrade
    from bot.settings import Settings
    from tests.channels.webchat_support import serve

    tmp = tmp_path_factory.mktemp("console")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, environment="test", database_url=f"sqlite+aiosqlite:///{tmp / 'app.db'}",
        kb_path=ROOT / "kb" / "sample", index_dir=tmp / "index", outbox_poll_seconds=0.05,
        secret_key="browser-test-secret-key", web_sessions_per_minute=10_000,
        slack_bot_token="xoxb-test-token", slack_signing_secret="s" * 32, slack_app_token=None,
        slack_api_base_url=slack_fake.base_url, slack_agents_channel=AGENTS, slack_supervisors_channel=AGENTS,
        twilio_account_sid=None, twilio_auth_token=None, redis_url=None,
    )
    await asyncio.to_thread(upgrade, settings.database_url)
    app = await asyncio.to_thread(create_app, settings, embedder=browser_embedder)
    async with app.state.parts.sessionmaker() as s, s.begin():
        await add_user(s, username="ann", password=PASSWORD, role="supervisor", display_name="Ann")
    async with serve(app, lifespan="on") as url:
        yield LiveApp(url, app)


async def sign_in(page: Page, url: str, username: str) -> None:
    """Sign in through the login form and wait for the queue (every console user lands there)."""
    await page.goto(url + "/console/login")
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Queue")).to_be_visible()


async def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def accessible(page: Page) -> None:
    assert await serious_violations(page) == [], page.url


