"""Browser fixtures: Debian's Chromium through Playwright (never `playwright install`), and the full
app (`bot.app.create_app`) on a loopback port with the sample KB and the real embedding model."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture(scope="session")
def browser_embedder(request: pytest.FixtureRequest) -> Any:
    """The shared session `embedder` (tests/fixtures/kb.py) when present, else load the bundled model."""
    try:
        return request.getfixturevalue("embedder")
    except pytest.FixtureLookupError:
        from kb_index import Embedder

        return Embedder.load()


@dataclass
class LiveApp:
    url: str
    app: Any

    @property
    def parts(self) -> Any:
        return self.app.state.parts

    @property
    def settings(self) -> Any:
        return self.app.state.settings


@pytest.fixture(scope="module")
async def live_app(tmp_path_factory: pytest.TempPathFactory, browser_embedder: Any) -> AsyncIterator[LiveApp]:
    """`make run`'s app (web chat, KB built from kb/sample, worker in the lifespan) on 127.0.0.1:0."""
    from bot.app import create_app
    from bot.migrate import upgrade
    from bot.settings import Settings
    from tests.channels.webchat_support import serve

    tmp = tmp_path_factory.mktemp("live")
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment="test",
        database_url=f"sqlite+aiosqlite:///{tmp / 'app.db'}",
        kb_path=ROOT / "kb" / "sample",
        index_dir=tmp / "index",
        outbox_poll_seconds=0.05,
        secret_key="browser-test-secret-key",
        web_sessions_per_minute=10_000,
        slack_bot_token=None, slack_signing_secret=None, slack_app_token=None,
        twilio_account_sid=None, twilio_auth_token=None, redis_url=None,
    )
    await asyncio.to_thread(upgrade, settings.database_url)
    app = await asyncio.to_thread(create_app, settings, embedder=browser_embedder)
    async with serve(app, lifespan="on") as url:
        yield LiveApp(url, app)


def sample_questions() -> list[dict[str, Any]]:
    path = ROOT / "tests" / "fixtures" / "sample_questions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
