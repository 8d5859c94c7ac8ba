"""Reports over the event log and conversations: volume, deflection, response and resolution times.

Read-only; every figure is computed from stored rows for a time window, so any process can
produce it (CLI `switchboard report`, Slack `/switchboard stats`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from statistics import median
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.messages import utcnow
from bot.models import Conversation, Event


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    idx = min(len(values) - 1, max(0, round(q * (len(values) - 1))))
    return round(values[idx], 1)


@dataclass
class Report:
    since: datetime
    until: datetime
    conversations: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    bot_answers: int = 0
    handed_off: int = 0
    escalated: int = 0
    resolved: int = 0
    open_now: dict[str, int] = field(default_factory=dict)
    deflection_rate: float | None = None  # conversations the bot closed without a person / all
    first_response_p50_s: float | None = None
    first_response_p90_s: float | None = None
    resolution_p50_s: float | None = None
    handoff_reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["since"], d["until"] = self.since.isoformat(), self.until.isoformat()
        return d

    def lines(self) -> list[str]:
        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f}s"

        return [
            f"Conversations {self.conversations} ({', '.join(f'{k} {v}' for k, v in sorted(self.by_channel.items())) or '-'})",
            f"Bot answers {self.bot_answers} · handed off {self.handed_off} · escalated {self.escalated} · "
            f"resolved {self.resolved}",
            f"Deflection {'-' if self.deflection_rate is None else f'{self.deflection_rate:.0%}'}",
            f"First human response p50 {fmt(self.first_response_p50_s)} · p90 {fmt(self.first_response_p90_s)}",
            f"Resolution p50 {fmt(self.resolution_p50_s)}",
            f"Open now: {', '.join(f'{k} {v}' for k, v in sorted(self.open_now.items())) or 'none'}",
            f"Handoff reasons: {', '.join(f'{k} {v}' for k, v in sorted(self.handoff_reasons.items())) or 'none'}",
        ]


async def build_report(session: AsyncSession, *, since: datetime | None = None, until: datetime | None = None) -> Report:
    until = until or utcnow()
    since = since or until - timedelta(days=7)
    convs = list((await session.execute(
        select(Conversation).where(Conversation.created_at >= since, Conversation.created_at < until)
    )).scalars())
    events = list((await session.execute(
        select(Event).where(Event.at >= since, Event.at < until)
    )).scalars())
    report = Report(since=since, until=until, conversations=len(convs))
    for c in convs:
        report.by_channel[c.channel] = report.by_channel.get(c.channel, 0) + 1
    for e in events:
        if e.kind == "bot_answered":
            report.bot_answers += 1
        elif e.kind in ("handed_off", "escalated"):
            setattr(report, e.kind, getattr(report, e.kind) + 1)
            reason = (e.data or {}).get("trigger", "unknown")
            report.handoff_reasons[reason] = report.handoff_reasons.get(reason, 0) + 1
        elif e.kind == "resolved":
            report.resolved += 1
    open_rows = (await session.execute(select(Conversation.state))).scalars().all()
    for state in open_rows:
        if state != "resolved":
            report.open_now[state] = report.open_now.get(state, 0) + 1
    if convs:
        deflected = sum(1 for c in convs if c.handed_off_at is None and c.assignee_id is None)
        report.deflection_rate = round(deflected / len(convs), 4)
    first = [(c.first_human_response_at - c.handed_off_at).total_seconds()
             for c in convs if c.first_human_response_at and c.handed_off_at]
    report.first_response_p50_s = round(median(first), 1) if first else None
    report.first_response_p90_s = _pct(first, 0.9)
    res = [(c.resolved_at - c.created_at).total_seconds() for c in convs if c.resolved_at]
    report.resolution_p50_s = round(median(res), 1) if res else None
    return report
