"""`switchboard report`: windows from --days/--from/--to, --channel, JSON and CSV, clear errors."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from bot.cli import app
from bot.report_cli import window
from tests.bot.test_report_history import replay

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def test_window_from_options() -> None:
    assert window(days=7, from_=None, to=None, timezone="UTC", now=NOW) == (datetime(2026, 11, 27, 12, tzinfo=UTC), NOW)
    # Dates are local midnights; --to is inclusive.
    since, until = window(days=7, from_="2026-11-23", to="2026-11-29", timezone="Europe/Paris", now=NOW)
    assert since == datetime(2026, 11, 22, 23, tzinfo=UTC) and until == datetime(2026, 11, 29, 23, tzinfo=UTC)
    since, until = window(days=3, from_=None, to="2026-11-29", timezone="UTC", now=NOW)
    assert (since, until) == (datetime(2026, 11, 27, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))


@pytest.fixture
async def env(db: async_sessionmaker[AsyncSession], tmp_path: Path, monkeypatch: Any) -> CliRunner:
    await replay(db)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    monkeypatch.setenv("SLA_HOLIDAYS", "2026-11-26")
    return CliRunner()


async def run(runner: CliRunner, *args: str) -> Any:
    return await asyncio.to_thread(runner.invoke, app, ["report", *args])


async def test_json_csv_text_and_channel(env: CliRunner) -> None:
    out = await run(env, "--from", "2026-11-23", "--to", "2026-11-29", "--json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["conversations"] == 6 and data["customers"] == 5
    assert data["resolution_business"]["mean_s"] == 1542.9  # needs SLA_HOLIDAYS: the Thursday is closed
    sms_out = await run(env, "--from", "2026-11-23", "--to", "2026-11-29", "--channel", "sms", "--json")
    sms = json.loads(sms_out.output)
    assert sms["conversations"] == 2 and sms["channel"] == "sms"
    csv_out = await run(env, "--from", "2026-11-23", "--to", "2026-11-29", "--csv")
    assert csv_out.exit_code == 0 and "csat,csat,0.6667" in csv_out.output.splitlines()
    text = await run(env, "--from", "2026-11-23", "--to", "2026-11-29")
    assert "Conversations 6 (sms 2, web 4)" in text.output


@pytest.mark.parametrize(("args", "message"), [
    (["--from", "2026-13-01"], "not a date"),
    (["--days", "0"], "at least 1"),
    (["--from", "2026-11-29", "--to", "2026-11-23"], "on or before"),
    (["--json", "--csv"], "choose one"),
])
async def test_bad_options_say_what_is_wrong(env: CliRunner, args: list[str], message: str) -> None:
    out = await run(env, *args)
    assert out.exit_code == 2 and message in out.output


async def test_bad_holiday_setting(env: CliRunner, monkeypatch: Any) -> None:
    monkeypatch.setenv("SLA_HOLIDAYS", "christmas")
    out = await run(env)
    assert out.exit_code == 2 and "holidays='christmas'" in out.output
