"""Every report figure, computed from plain rows by pure functions (definitions: docs/reports.md).

    report = compute_report(rows, since=since, until=until, now=utcnow(), policy=SLAPolicy.from_settings(s))

Nothing here reads a conversation's mutable columns: times come from the event log cut into
segments (`bot.report_segments`), so a reopen cannot make a handed-off conversation look
automated, nor erase its first response.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from statistics import mean, median
from typing import Any
from zoneinfo import ZoneInfo

from bot.report_rows import QuestionRow, ReportRows, aware
from bot.report_segments import Segment, by_conversation, segments
from handoff.sla import SLAPolicy, business_seconds_between, compute_sla

AUTOMATED_WINDOW = timedelta(hours=24)
FCR_WINDOW = timedelta(days=7)
SATISFIED = (4, 5)

#: Groups unanswered questions: (questions) -> [(label, size, examples)], biggest first.
Clusterer = Callable[[Sequence[str]], list[tuple[str, int, list[str]]]]


def p50(values: Sequence[float]) -> float | None:
    return round(median(values), 1) if values else None


def p90(values: Sequence[float]) -> float | None:
    """Nearest rank: the smallest value with at least 90% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)], 1)


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


# The distribution's buckets: (label, upper bound in seconds, exclusive); the last is open-ended.
BUCKETS = (("<5m", 300.0), ("5-15m", 900.0), ("15-60m", 3600.0), ("1-4h", 14400.0), ("4-24h", 86400.0),
           (">24h", math.inf))


def buckets(values: Sequence[float]) -> dict[str, int]:
    """How many values fall in each of BUCKETS (the console's distribution charts)."""
    out = {label: 0 for label, _ in BUCKETS}
    for v in values:
        out[next(label for label, upper in BUCKETS if v < upper)] += 1
    return out


def durations(values: Sequence[float]) -> dict[str, Any]:
    return {"count": len(values), "p50_s": p50(values), "p90_s": p90(values),
            "mean_s": round(mean(values), 1) if values else None, "buckets": buckets(values)}


@dataclass
class Report:
    since: datetime
    until: datetime
    timezone: str = "UTC"
    channel: str | None = None
    conversations: int = 0
    customers: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)
    by_day: dict[str, int] = field(default_factory=dict)
    by_hour: dict[str, int] = field(default_factory=dict)
    reopened: int = 0
    bot_answers: int = 0
    handed_off: int = 0
    escalated: int = 0
    resolved: int = 0
    automated_resolutions: int = 0
    automated_pending: int = 0  # counted, but their 24 h are not over yet
    automated_resolution_rate: float | None = None
    contained_rate: float | None = None  # never reached a person (so far)
    first_response: dict[str, Any] = field(default_factory=dict)
    first_response_business: dict[str, Any] = field(default_factory=dict)
    resolution: dict[str, Any] = field(default_factory=dict)
    resolution_business: dict[str, Any] = field(default_factory=dict)
    fcr: dict[str, Any] = field(default_factory=dict)
    aht: dict[str, dict[str, Any]] = field(default_factory=dict)
    csat: dict[str, Any] = field(default_factory=dict)
    sla: dict[str, dict[str, Any]] = field(default_factory=dict)
    handoff_reasons: dict[str, int] = field(default_factory=dict)
    top_articles: list[dict[str, Any]] = field(default_factory=list)
    unanswered: list[dict[str, Any]] = field(default_factory=list)
    open_now: dict[str, int] = field(default_factory=dict)

    @property
    def deflection_rate(self) -> float | None:  # the earlier name of `contained_rate`
        return self.contained_rate

    @property
    def first_response_p50_s(self) -> float | None:
        return self.first_response.get("p50_s")

    def lines(self) -> list[str]:
        from bot.reports import report_lines  # noqa: PLC0415 cycle: bot.reports imports this module

        return report_lines(self)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["since"], d["until"] = self.since.isoformat(), self.until.isoformat()
        return d


def _in(at: datetime | None, since: datetime, until: datetime) -> bool:
    return at is not None and since <= at < until


def compute_report(
    rows: ReportRows,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    policy: SLAPolicy,
    timezone: str | None = None,
    channel: str | None = None,
    clusterer: Clusterer | None = None,
    top: int = 10,
) -> Report:
    """The report for [since, until) as known at `now` (figures whose windows are still open are
    counted on what is known and flagged `pending`)."""
    since, until, now = aware(since), aware(until), aware(now)
    tz_name = timezone or policy.hours.timezone
    tz = ZoneInfo(tz_name)
    convs = [c for c in rows.conversations if channel is None or c.channel == channel]
    wanted = {c.id for c in convs}
    events = [e for e in rows.events if e.conversation_id in wanted]
    segs = {cid: segments(evs) for cid, evs in by_conversation(events).items()}
    r = Report(since=since, until=until, timezone=tz_name, channel=channel)

    # ---- volume -------------------------------------------------------------------------------------------
    created = [c for c in convs if _in(aware(c.created_at), since, until)]
    r.conversations = len(created)
    r.customers = len({c.customer_id for c in created})
    r.by_channel = dict(sorted(Counter(c.channel for c in created).items()))
    local = [aware(c.created_at).astimezone(tz) for c in created]
    r.by_day = dict(sorted(Counter(t.date().isoformat() for t in local).items()))
    hours = Counter(t.hour for t in local)
    r.by_hour = {f"{h:02d}": hours.get(h, 0) for h in range(24)}

    in_window = [e for e in events if _in(e.at, since, until)]
    kinds = Counter(e.kind for e in in_window)
    r.reopened, r.bot_answers = kinds["reopened"], kinds["bot_answered"]
    r.handed_off, r.escalated, r.resolved = kinds["handed_off"], kinds["escalated"], kinds["resolved"]
    r.handoff_reasons = dict(sorted(Counter(
        str(e.data.get("trigger") or "unknown") for e in in_window if e.kind in ("handed_off", "escalated")
    ).items()))
    articles = Counter(str(e.data.get("article_id")) for e in in_window
                       if e.kind == "bot_answered" and e.data.get("article_id"))
    ranked = sorted(articles.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    r.top_articles = [{"article_id": a, "answers": n} for a, n in ranked]

    _automation(r, created, segs, now)
    all_segs = [s for ss in segs.values() for s in ss]
    _times(r, all_segs, since, until, policy)
    _fcr(r, segs, since, until, now)
    _aht(r, all_segs, since, until)
    _sla(r, all_segs, since, until, now, policy, {c.id: c.priority for c in convs})
    _csat(r, rows, wanted, since, until)
    r.unanswered = _unanswered([q for q in rows.questions if q.conversation_id in wanted and _in(q.at, since, until)],
                               clusterer, top)
    r.open_now = dict(sorted(Counter(st for ch, st in rows.open_states
                                     if st != "resolved" and (channel is None or ch == channel)).items()))
    return r


def _automation(r: Report, created: Sequence[Any], segs: dict[int, list[Segment]], now: datetime) -> None:
    """Automated: the bot answered, the conversation was resolved, and no person was involved
    before that resolution nor within 24 h after it (a reopen within 24 h also disqualifies)."""
    automated = pending = contained = 0
    for c in created:
        ss = segs.get(c.id, [])
        if not any(s.human for s in ss):
            contained += 1
        first = next((s for s in ss if s.resolved_at is not None), None)
        if first is None or first.resolved_at is None or first.bot_answers == 0:
            continue
        if any(s.human for s in ss[: ss.index(first) + 1]):
            continue
        limit = first.resolved_at + AUTOMATED_WINDOW
        later = ss[ss.index(first) + 1 :]
        if any(s.start < limit for s in later):
            continue  # reopened (or written to) within 24 h
        automated += 1
        if now < limit:
            pending += 1
    r.automated_resolutions, r.automated_pending = automated, pending
    r.automated_resolution_rate = rate(automated, len(created))
    r.contained_rate = rate(contained, len(created))


def _times(r: Report, segs: Sequence[Segment], since: datetime, until: datetime, policy: SLAPolicy) -> None:
    hours = policy.hours
    frt = [(s.queued_at, s.first_reply_at) for s in segs
           if s.queued_at is not None and s.first_reply_at is not None and _in(s.queued_at, since, until)]
    r.first_response = durations([(b - a).total_seconds() for a, b in frt])
    r.first_response_business = durations([business_seconds_between(a, b, hours) for a, b in frt])
    res = [(s.start, s.resolved_at) for s in segs if s.resolved_at is not None and _in(s.resolved_at, since, until)]
    r.resolution = durations([(b - a).total_seconds() for a, b in res])
    r.resolution_business = durations([business_seconds_between(a, b, hours) for a, b in res])


def _fcr(r: Report, segs: dict[int, list[Segment]], since: datetime, until: datetime, now: datetime) -> None:
    """Per conversation whose first resolution with a person falls in the window: one reply by a
    person in that segment, and no reopen within 7 days of the resolution."""
    eligible = one_touch = pending = 0
    for ss in segs.values():
        first = next((s for s in ss if s.human and s.resolved_at is not None), None)
        if first is None or first.resolved_at is None or not _in(first.resolved_at, since, until):
            continue
        eligible += 1
        limit = first.resolved_at + FCR_WINDOW
        reopened = any(s.start < limit for s in ss[ss.index(first) + 1 :])
        if first.replies == 1 and not reopened:
            one_touch += 1
            if now < limit:
                pending += 1
    r.fcr = {"eligible": eligible, "one_touch": one_touch, "pending": pending, "rate": rate(one_touch, eligible)}


def _aht(r: Report, segs: Sequence[Segment], since: datetime, until: datetime) -> None:
    """Per agent: from their (latest) assignment to the resolution, for resolutions in the window."""
    per: dict[str, list[float]] = {}
    for s in segs:
        if s.resolved_at is None or s.resolved_owner is None or s.owner_since is None:
            continue
        if _in(s.resolved_at, since, until):
            per.setdefault(s.resolved_owner, []).append((s.resolved_at - s.owner_since).total_seconds())
    r.aht = {agent: {"resolved": len(v), "mean_s": round(mean(v), 1), "p50_s": p50(v)}
             for agent, v in sorted(per.items())}


def _sla(r: Report, segs: Sequence[Segment], since: datetime, until: datetime, now: datetime,
         policy: SLAPolicy, priorities: dict[int, str]) -> None:
    """Per clock, for handoffs in the window: met in time / breached (late, or overdue now) /
    pending (running, not yet due). Adherence = met / (met + breached)."""
    out: dict[str, dict[str, Any]] = {name: {"met": 0, "breached": 0, "pending": 0}
                                      for name in ("first_response", "resolution")}
    for s in segs:
        if s.queued_at is None or not _in(s.queued_at, since, until):
            continue
        priority = s.priority or priorities.get(s.conversation_id) or "normal"
        status = compute_sla(priority=priority, started_at=s.queued_at, first_response_at=s.first_reply_at,
                             resolved_at=s.resolved_at, now=now, policy=policy)
        for clock in (status.first_response, status.resolution):
            bucket = "breached" if clock.breached else ("met" if clock.met_at is not None else "pending")
            out[clock.name][bucket] += 1
    for row in out.values():
        row["adherence"] = rate(row["met"], row["met"] + row["breached"])
    r.sla = out


def _csat(r: Report, rows: ReportRows, wanted: set[int], since: datetime, until: datetime) -> None:
    sent = [s for s in rows.surveys if s.conversation_id in wanted and _in(s.sent_at, since, until)]
    scores = [s.score for s in sent if s.score is not None]
    satisfied = sum(1 for v in scores if v in SATISFIED)
    r.csat = {"sent": len(sent), "responses": len(scores), "response_rate": rate(len(scores), len(sent)),
              "satisfied": satisfied, "csat": rate(satisfied, len(scores)),
              "average": round(mean(scores), 2) if scores else None,
              "by_score": {str(k): sum(1 for v in scores if v == k) for k in range(1, 6)}}


_WORD = re.compile(r"[a-z0-9']+")
_STOP = frozenset("a an the i my me is are was to of for on in it do does can could how what why when "
                  "you your we our please hi hello thanks thank".split())


def lexical_clusters(questions: Sequence[str]) -> list[tuple[str, int, list[str]]]:
    """Questions grouped by their content words (order, case, punctuation and filler ignored)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for q in questions:
        words = [w for w in _WORD.findall(q.lower()) if w not in _STOP]
        key = tuple(sorted(set(words))) or (q.strip().lower(),)
        groups.setdefault(key, []).append(q.strip())
    out = []
    for texts in groups.values():
        common = Counter(texts).most_common()
        out.append((common[0][0], len(texts), [t for t, _ in common[:5]]))
    out.sort(key=lambda g: (-g[1], g[0]))
    return out


def _unanswered(questions: Sequence[QuestionRow], clusterer: Clusterer | None, top: int) -> list[dict[str, Any]]:
    if not questions:
        return []
    ordered = sorted(questions, key=lambda q: (q.at, q.conversation_id))
    groups = (clusterer or lexical_clusters)([q.text for q in ordered])
    return [{"label": label, "count": n, "examples": ex} for label, n, ex in groups[:top]]
