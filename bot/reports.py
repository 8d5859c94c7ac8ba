"""Reports over the event log: volume, automation, response and resolution times, FCR, AHT, CSAT, SLA.

Read-only; every figure is computed from stored rows for a time window by the pure functions in
`bot.report_metrics` (definitions in docs/reports.md), so any process can produce it (CLI
`switchboard report`, Slack `/switchboard report`, the supervisor console)::

    report = await build_report(session, since=since, until=until, policy=SLAPolicy.from_settings(s))
    print("\\n".join(report_lines(report)))
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import utcnow
from bot.report_metrics import Clusterer, Report, compute_report
from bot.report_rows import load_rows
from bot.sla_watch import human_duration
from handoff.sla import SLAPolicy


async def build_report(
    session: AsyncSession,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    policy: SLAPolicy | None = None,
    channel: str | None = None,
    now: datetime | None = None,
    clusterer: Clusterer | None = None,
) -> Report:
    """The report for [since, until) (default: the last 7 days)."""
    now = now or utcnow()
    until = until or now
    since = since or until - timedelta(days=7)
    policy = policy or SLAPolicy.from_spec()
    rows = await load_rows(session, since=since, until=until, channel=channel)
    return compute_report(rows, since=since, until=until, now=now, policy=policy, channel=channel,
                          clusterer=clusterer)


def _d(v: float | None) -> str:
    if v is None:
        return "-"
    return human_duration(v)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def _kv(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "-"


def report_lines(r: Report) -> list[str]:
    """The report as text (CLI, Slack)."""
    fr, frb, res, resb = r.first_response, r.first_response_business, r.resolution, r.resolution_business
    fcr, cs = r.fcr, r.csat
    lines = [
        f"Window {r.since:%Y-%m-%d %H:%M} .. {r.until:%Y-%m-%d %H:%M} UTC"
        + (f" · channel {r.channel}" if r.channel else "") + f" · days/hours in {r.timezone}",
        f"Conversations {r.conversations} ({_kv(r.by_channel)}) · customers {r.customers} · reopened {r.reopened}",
        f"Bot answers {r.bot_answers} · handed off {r.handed_off} · escalated {r.escalated} · resolved {r.resolved}",
        f"Automated resolution {_pct(r.automated_resolution_rate)} ({r.automated_resolutions}"
        + (f", {r.automated_pending} inside their 24 h" if r.automated_pending else "") + ")"
        + f" · contained {_pct(r.contained_rate)}",
        f"First response by a person p50 {_d(fr.get('p50_s'))} · p90 {_d(fr.get('p90_s'))}"
        f" (business hours p50 {_d(frb.get('p50_s'))} · p90 {_d(frb.get('p90_s'))}; n={fr.get('count', 0)})",
        f"Resolution p50 {_d(res.get('p50_s'))} · p90 {_d(res.get('p90_s'))}"
        f" (business hours p50 {_d(resb.get('p50_s'))}; n={res.get('count', 0)})",
        f"FCR {_pct(fcr.get('rate'))} ({fcr.get('one_touch', 0)} of {fcr.get('eligible', 0)}"
        + (f", {fcr['pending']} inside their 7 days" if fcr.get("pending") else "") + ")",
        "AHT " + (", ".join(f"{a} {_d(v['mean_s'])} (n={v['resolved']})" for a, v in r.aht.items()) or "-"),
        f"CSAT {_pct(cs.get('csat'))} ({cs.get('satisfied', 0)} of {cs.get('responses', 0)} rated 4-5)"
        f" · response rate {_pct(cs.get('response_rate'))} of {cs.get('sent', 0)} sent",
    ]
    for name, row in r.sla.items():
        lines.append(f"SLA {name.replace('_', ' ')}: {_pct(row.get('adherence'))} met"
                     f" ({row['met']} met, {row['breached']} breached, {row['pending']} running)")
    lines.append(f"Handoff reasons: {_kv(r.handoff_reasons)}")
    lines.append("Top articles: " + (", ".join(f"{a['article_id']} {a['answers']}" for a in r.top_articles) or "-"))
    lines.append("Top unanswered: " + ("; ".join(f"{u['label']!r} x{u['count']}" for u in r.unanswered) or "-"))
    lines.append(f"Open now: {_kv(r.open_now) if r.open_now else 'none'}")
    return lines


def _flatten(prefix: str, value: Any, out: list[tuple[str, str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _flatten(f"{prefix}.{i}", item, out)
    else:
        metric, _, key = prefix.partition(".")
        out.append((metric, key, "" if value is None else str(value)))


def report_csv(r: Report) -> str:
    """One row per figure: metric, key, value (nested keys joined with dots)."""
    rows: list[tuple[str, str, str]] = []
    _flatten("", r.to_dict(), rows)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("metric", "key", "value"))
    writer.writerows(rows)
    return buf.getvalue()


__all__ = ["Report", "build_report", "report_csv", "report_lines"]
