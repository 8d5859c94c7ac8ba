"""`switchboard report`: the figures of docs/reports.md for a window, as text, JSON or CSV.

    switchboard report --days 30 --channel sms
    switchboard report --from 2026-11-01 --to 2026-11-30 --csv > november.csv

`--from`/`--to` are calendar dates in the SLA time zone (`SLA_TIMEZONE`); `--to` is inclusive.
"""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from bot.db import with_session
from bot.messages import utcnow
from bot.reports import build_report, report_csv, report_lines
from bot.settings import Settings
from handoff.errors import SLAConfigError
from handoff.sla import SLAPolicy


def window(
    *, days: int, from_: str | None, to: str | None, timezone: str, now: datetime
) -> tuple[datetime, datetime]:
    """[since, until) in UTC from the options (dates are local midnights in `timezone`)."""
    tz = ZoneInfo(timezone)

    def midnight(text: str, option: str) -> datetime:
        try:
            d = date.fromisoformat(text)
        except ValueError as exc:
            raise typer.BadParameter(f"{text!r} is not a date like 2026-11-30", param_hint=option) from exc
        return datetime(d.year, d.month, d.day, tzinfo=tz)

    if days <= 0:
        raise typer.BadParameter("must be at least 1", param_hint="--days")
    until = midnight(to, "--to") + timedelta(days=1) if to else now
    since = midnight(from_, "--from") if from_ else until - timedelta(days=days)
    if since >= until:
        raise typer.BadParameter("--from must be on or before --to", param_hint="--from")
    return since.astimezone(ZoneInfo("UTC")), until.astimezone(ZoneInfo("UTC"))


def report(
    days: Annotated[int, typer.Option(help="Window: the last N days (ignored when --from is given)")] = 7,
    from_: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD (SLA time zone)")] = None,
    to: Annotated[str | None, typer.Option("--to", help="Last day, inclusive, YYYY-MM-DD")] = None,
    channel: Annotated[str | None, typer.Option(help="Only this channel (sms, web, ...)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV (metric,key,value) instead of text")] = False,
) -> None:
    """Volume, automated resolution, first response, resolution, FCR, AHT, CSAT, SLA adherence,
    handoff reasons, top articles and unanswered questions (docs/reports.md)."""
    if as_json and as_csv:
        raise typer.BadParameter("choose one of --json and --csv", param_hint="--csv")
    settings = Settings()
    try:
        policy = SLAPolicy.from_settings(settings)
    except SLAConfigError as exc:
        typer.echo(f"SLA settings: {exc}", err=True)
        raise typer.Exit(2) from exc
    now = utcnow()
    since, until = window(days=days, from_=from_, to=to, timezone=settings.sla_timezone, now=now)

    async def go(session: Any) -> Any:
        return await build_report(session, since=since, until=until, policy=policy, channel=channel, now=now)

    def failed(exc: Exception) -> None:
        typer.echo(f"database error (run `switchboard migrate`?): {type(exc).__name__}: "
                   f"{str(exc).splitlines()[0]}", err=True)

    result = asyncio.run(with_session(settings.database_url, go, failed))
    if result is None:
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    elif as_csv:
        typer.echo(report_csv(result), nl=False)
    else:
        typer.echo("\n".join(report_lines(result)))
