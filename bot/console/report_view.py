"""The reports page's figures: the report of `switchboard report --json` for the chosen window (the
same `bot.reports.build_report`, the same window rule `bot.report_cli.window`), plus one report per
day of it for the charts over time. Each chart is a table first (exported as CSV) and an SVG.

    view = await report_view(session, from_day="2026-12-01", to_day="2026-12-07", channel=None,
                             settings=settings, policy=policy)
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from bot.console.charts import bars, heatmap
from bot.messages import utcnow
from bot.report_cli import window
from bot.report_metrics import BUCKETS, Report
from bot.reports import build_report
from bot.settings import Settings
from handoff.sla import SLAPolicy

MAX_DAYS = 92


class RangeError(ValueError):
    """A window the page will not draw (bad dates, reversed, longer than MAX_DAYS)."""


@dataclass
class Chart:
    key: str
    title: str
    headers: list[str]
    rows: list[list[Any]]
    svg: Markup = field(default_factory=lambda: Markup(""))

    def csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.headers)
        writer.writerows([["" if v is None else v for v in row] for row in self.rows])
        return buf.getvalue()


@dataclass
class ReportView:
    from_day: str
    to_day: str
    channel: str | None
    total: Report
    days: list[tuple[str, Report]]
    charts: list[Chart]


def _pct(v: float | None) -> float | None:
    return None if v is None else round(100 * v, 1)


def _minutes(v: float | None) -> float | None:
    return None if v is None else round(v / 60, 1)


def default_range(settings: Settings, days: int = 7) -> tuple[str, str]:
    today = utcnow().astimezone(ZoneInfo(settings.sla_timezone)).date()
    return (today - timedelta(days=days - 1)).isoformat(), today.isoformat()


async def report_view(session: AsyncSession, *, from_day: str, to_day: str, channel: str | None,
                      settings: Settings, policy: SLAPolicy) -> ReportView:
    try:
        first, last = date.fromisoformat(from_day), date.fromisoformat(to_day)
    except ValueError as exc:
        raise RangeError("Dates are written like 2026-12-01.") from exc
    if last < first:
        raise RangeError("The first day must be on or before the last.")
    if (last - first).days + 1 > MAX_DAYS:
        raise RangeError(f"At most {MAX_DAYS} days at a time.")
    now = utcnow()

    async def one(a: str, b: str) -> Report:
        since, until = window(days=1, from_=a, to=b, timezone=settings.sla_timezone, now=now)
        return await build_report(session, since=since, until=until, policy=policy, channel=channel, now=now)

    total = await one(from_day, to_day)
    days = []
    d = first
    while d <= last:
        days.append((d.isoformat(), await one(d.isoformat(), d.isoformat())))
        d += timedelta(days=1)
    return ReportView(from_day, to_day, channel, total, days, charts(total, days))


def charts(total: Report, days: list[tuple[str, Report]]) -> list[Chart]:
    labels = [d for d, _ in days]
    channels = sorted({ch for _, r in days for ch in r.by_channel})
    out = []

    volume = Chart("volume", "Conversations per day, by channel", ["day", *channels, "total"],
                   [[d, *[r.by_channel.get(ch, 0) for ch in channels], r.conversations] for d, r in days])
    volume.svg = bars(labels, {ch: [r.by_channel.get(ch, 0) for _, r in days] for ch in channels} or {"none": []},
                      title=volume.title)
    out.append(volume)

    rates = Chart("automation", "Automated resolution and CSAT per day (%)",
                  ["day", "automated resolution %", "automated", "conversations", "CSAT %", "CSAT responses"],
                  [[d, _pct(r.automated_resolution_rate), r.automated_resolutions, r.conversations,
                    _pct(r.csat.get("csat")), r.csat.get("responses", 0)] for d, r in days])
    rates.svg = bars(labels, {"automated resolution": [_pct(r.automated_resolution_rate) for _, r in days],
                              "CSAT": [_pct(r.csat.get("csat")) for _, r in days]},
                     title=rates.title, stacked=False, unit="%", top=100)
    out.append(rates)

    times = Chart("times", "First response and resolution time per day (minutes, p50 and p90)",
                  ["day", "first response p50", "first response p90", "first responses",
                   "resolution p50", "resolution p90", "resolutions"],
                  [[d, _minutes(r.first_response.get("p50_s")), _minutes(r.first_response.get("p90_s")),
                    r.first_response.get("count", 0), _minutes(r.resolution.get("p50_s")),
                    _minutes(r.resolution.get("p90_s")), r.resolution.get("count", 0)] for d, r in days])
    times.svg = bars(labels, {"first response p50": [_minutes(r.first_response.get("p50_s")) for _, r in days],
                              "first response p90": [_minutes(r.first_response.get("p90_s")) for _, r in days],
                              "resolution p50": [_minutes(r.resolution.get("p50_s")) for _, r in days]},
                     title=times.title, stacked=False, unit=" min")
    out.append(times)

    dist = Chart("distribution", "First response and resolution time distribution (the whole window)",
                 ["bucket", "first responses", "resolutions"],
                 [[label, total.first_response.get("buckets", {}).get(label, 0),
                   total.resolution.get("buckets", {}).get(label, 0)] for label, _ in BUCKETS])
    dist.svg = bars([row[0] for row in dist.rows], {"first responses": [row[1] for row in dist.rows],
                                                    "resolutions": [row[2] for row in dist.rows]},
                    title=dist.title, stacked=False)
    out.append(dist)

    sla = Chart("sla", "SLA adherence per clock (the whole window)",
                ["clock", "adherence %", "met", "breached", "running"],
                [[name, _pct(row.get("adherence")), row["met"], row["breached"], row["pending"]]
                 for name, row in total.sla.items()])
    sla.svg = bars(list(total.sla), {"met": [row["met"] for row in total.sla.values()],
                                     "breached": [row["breached"] for row in total.sla.values()],
                                     "running": [row["pending"] for row in total.sla.values()]}, title=sla.title)
    out.append(sla)

    reasons = Chart("reasons", "Handoff reasons (the whole window)", ["reason", "handoffs"],
                    [[k, v] for k, v in sorted(total.handoff_reasons.items(), key=lambda kv: (-kv[1], kv[0]))])
    reasons.svg = bars([row[0] for row in reasons.rows], {"handoffs": [row[1] for row in reasons.rows]},
                       title=reasons.title)
    out.append(reasons)

    hours = [f"{h:02d}" for h in range(24)]
    heat = Chart("hours", f"Busiest hours: conversations by day and hour ({total.timezone})", ["day", *hours],
                 [[d, *[r.by_hour.get(h, 0) for h in hours]] for d, r in days])
    heat.svg = heatmap(labels, hours, [row[1:] for row in heat.rows], title=heat.title)
    out.append(heat)
    return out


__all__ = ["ReportView", "Chart", "RangeError", "report_view", "default_range", "MAX_DAYS"]
