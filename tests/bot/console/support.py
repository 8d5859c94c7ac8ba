"""A console app on a migrated SQLite file (no model: a table searcher), and a signed-in client."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from bot.app import create_app
from bot.console.users import add_user
from bot.migrate import upgrade
from bot.settings import Settings
from tests.bot.helpers import TableSearcher

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def make_app(settings: Settings) -> Any:
    await asyncio.to_thread(upgrade, settings.database_url)
    return create_app(settings, kb=TableSearcher({"refund": ("refunds", 0.9)}))


async def add(app: Any, username: str, role: str = "agent", password: str = PASSWORD) -> None:
    async with app.state.parts.sessionmaker() as session, session.begin():
        await add_user(session, username=username, password=password, role=role)


def client(app: Any, base: str = "http://127.0.0.1:8000") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base, follow_redirects=False)


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "no CSRF field on the page"
    return m.group(1)


async def login(c: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    page = await c.get("/console/login")
    return await c.post("/console/login", data={"username": username, "password": password,
                                                "csrf": csrf_of(page.text), "next": "/console"})


@dataclass
class SignedIn:
    client: httpx.AsyncClient
    csrf: str


async def signed_in(app: Any, username: str) -> AsyncIterator[SignedIn]:
    async with client(app) as c:
        r = await login(c, username)
        assert r.status_code == 303, r.text
        page = await c.get("/console")
        assert page.status_code == 200
        yield SignedIn(c, csrf_of(page.text))


def cli_report_json(settings: Settings, day: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `switchboard report --from DAY --to DAY --json` prints for this database."""
    from bot.cli import app

    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    r = CliRunner().invoke(app, ["report", "--from", day, "--to", day, "--json"])
    assert r.exit_code == 0, r.output
    result: dict[str, Any] = json.loads(r.output)
    return result
