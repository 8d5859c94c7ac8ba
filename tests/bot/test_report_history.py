"""A scripted week replayed into the database; every report figure checked against a hand-computed answer.

The week (Mon 2026-11-23 .. Mon 2026-11-30, UTC; business hours mon-fri 09:00-17:00; Thursday
2026-11-26 is a holiday; the report is read at Mon 2026-11-30 10:00):

C1 web  A  Mon 10:00 created, 10:01 bot answers (refunds), 10:30 closed by the idle timer -> automated
C2 sms  B  Mon 11:00 created, 11:01 bot answers (refunds), 11:10 resolved; REOPENED 15:00, handed off
           15:01 (asked_for_human), assigned U1 15:30, U1 replies 15:40 and 15:50, resolved 16:00
C3 web  C  Tue 16:00 created, 16:05 handed off (negative_sentiment, high), assigned U2 16:20, U2 replies
           16:30 (once), resolved 16:50; reopened Thu (holiday) 10:00, bot answers (shipping), idle-closed 10:20
C4 sms  D  Wed 20:00 created (after hours), 20:01 escalated (keyword, urgent: around the clock), assigned
           supervisor S1 20:30, S1 replies 20:40 (first-response clock breached: due 20:16), resolved 23:00.
           D is then merged into B (the same person on a second number).
C5 web  E  Fri 16:30 created with an unanswered question, 16:31 handed off (asked_for_human); nobody yet
C6 web  F  Sat 12:00 created, two unanswered questions, 12:05 bot answers (shipping); still open with the bot
C7 sms  G  created Sun 22 23:00 (before the window), handed off 23:30; assigned U1 Mon 09:10, replies 09:20,
           resolved 09:30 (in the window)

Surveys: C2 sent Mon 16:05 -> 5; C3 sent Tue 17:00 -> 2; C4 sent Thu 09:00, no answer; C7 sent Mon 10:00 -> 4.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.csat_models import CsatSurvey
from bot.customers_admin import merge_customers, show_customer
from bot.models import ChannelIdentity, Conversation, Customer, Event, Message
from bot.reports import build_report, report_csv, report_lines
from handoff.sla import SLAPolicy

SINCE = datetime(2026, 11, 23, tzinfo=UTC)
UNTIL = datetime(2026, 11, 30, tzinfo=UTC)
NOW = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
POLICY = SLAPolicy.from_spec(hours="mon-fri 09:00-17:00", timezone="UTC",
                             targets="urgent=15m/4h,high=1h/8h,normal=4h/24h,low=8h/72h",
                             around_the_clock="urgent", holidays=[datetime(2026, 11, 26).date()])


def t(day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=UTC)


HANDOFF = {"asked_for_human": {"trigger": "asked_for_human", "priority": "normal", "target": "agents"}}

# (conversation, channel, customer, created, final state, [(kind, at, data)], [(at, unanswered question)])
EventRows = list[tuple[str, datetime, dict[str, Any]]]
HISTORY: list[tuple[str, str, str, datetime, str, EventRows, list[tuple[datetime, str]]]] = [
    ("C1", "web", "A", t(23, 10), "resolved", [
        ("bot_answered", t(23, 10, 1), {"article_id": "refunds"}),
        ("resolved", t(23, 10, 30), {"by": "idle"}),
    ], []),
    ("C2", "sms", "B", t(23, 11), "resolved", [
        ("bot_answered", t(23, 11, 1), {"article_id": "refunds"}),
        ("resolved", t(23, 11, 10), {"by": "idle"}),
        ("reopened", t(23, 15), {}),
        ("handed_off", t(23, 15, 1), HANDOFF["asked_for_human"]),
        ("assigned", t(23, 15, 30), {"to": "U1", "role": "agent"}),
        ("first_human_response", t(23, 15, 40), {"by": "U1"}),
        ("agent_replied", t(23, 15, 40), {"by": "U1"}),
        ("agent_replied", t(23, 15, 50), {"by": "U1"}),
        ("resolved", t(23, 16), {"by": "U1"}),
    ], []),
    ("C3", "web", "C", t(24, 16), "resolved", [
        ("handed_off", t(24, 16, 5), {"trigger": "negative_sentiment", "priority": "high"}),
        ("assigned", t(24, 16, 20), {"to": "U2", "role": "agent"}),
        ("agent_replied", t(24, 16, 30), {"by": "U2"}),
        ("resolved", t(24, 16, 50), {"by": "U2"}),
        ("reopened", t(26, 10), {}),
        ("bot_answered", t(26, 10, 1), {"article_id": "shipping"}),
        ("resolved", t(26, 10, 20), {"by": "idle"}),
    ], []),
    ("C4", "sms", "D", t(25, 20), "resolved", [
        ("escalated", t(25, 20, 1), {"trigger": "keyword", "priority": "urgent", "target": "supervisor"}),
        ("assigned", t(25, 20, 30), {"to": "S1", "role": "supervisor"}),
        ("agent_replied", t(25, 20, 40), {"by": "S1"}),
        ("resolved", t(25, 23), {"by": "S1"}),
    ], []),
    ("C5", "web", "E", t(27, 16, 30), "waiting", [
        ("handed_off", t(27, 16, 31), HANDOFF["asked_for_human"]),
    ], [(t(27, 16, 30), "Where is my parcel?")]),
    ("C6", "web", "F", t(28, 12), "bot", [
        ("bot_unsure", t(28, 12, 1), {}),
        ("bot_answered", t(28, 12, 5), {"article_id": "shipping"}),
    ], [(t(28, 12), "where is my parcel"), (t(28, 12, 2), "can I pay by cheque")]),
    ("C7", "sms", "G", t(22, 23), "resolved", [
        ("handed_off", t(22, 23, 30), HANDOFF["asked_for_human"]),
        ("assigned", t(23, 9, 10), {"to": "U1", "role": "agent"}),
        ("agent_replied", t(23, 9, 20), {"by": "U1"}),
        ("resolved", t(23, 9, 30), {"by": "U1"}),
    ], []),
]
SURVEYS = [("C2", t(23, 16, 5), 5), ("C3", t(24, 17), 2), ("C4", t(26, 9), None), ("C7", t(23, 10), 4)]


async def replay(sm: async_sessionmaker[AsyncSession], history: list[Any] = HISTORY,
                 surveys: list[Any] = SURVEYS) -> dict[str, int]:
    """Write the history; returns conversation name -> id (customer D merged into B at the end)."""
    ids: dict[str, int] = {}
    customers: dict[str, Customer] = {}
    async with sm() as s, s.begin():
        for n, (name, channel, who, created, state, events, questions) in enumerate(history):
            if who not in customers:
                customers[who] = Customer(display_name=f"Customer {who}")
                s.add(customers[who])
                await s.flush()
            ident = ChannelIdentity(customer_id=customers[who].id, channel=channel, address=f"{who}-{channel}-{n}")
            s.add(ident)
            await s.flush()
            # After a reopen the engine clears these columns: the report must not need them.
            conv = Conversation(customer_id=customers[who].id, identity_id=ident.id, channel=channel, state=state,
                                created_at=created, handed_off_at=None, first_human_response_at=None)
            s.add(conv)
            await s.flush()
            ids[name] = conv.id
            s.add(Event(conversation_id=conv.id, kind="created", at=created, data={"channel": channel}))
            for kind, at, data in events:
                s.add(Event(conversation_id=conv.id, kind=kind, at=at, data=data))
            for i, (at, text) in enumerate(questions):
                s.add(Message(conversation_id=conv.id, channel=channel, direction="in", author_kind="customer",
                              text=text, platform_id=f"{name}-{i}", created_at=at,
                              meta={"kb": {"query": text, "answered": False, "hits": []}}))
                s.add(Message(conversation_id=conv.id, channel=channel, direction="in", author_kind="customer",
                              text=f"{text} (answered)", platform_id=f"{name}-{i}-ok", created_at=at,
                              meta={"kb": {"query": text, "answered": True, "hits": []}}))
        for name, sent, score in surveys:
            conv_row = await s.get(Conversation, ids[name])
            assert conv_row is not None
            s.add(CsatSurvey(conversation_id=conv_row.id, identity_id=conv_row.identity_id, channel=conv_row.channel,
                             status="answered" if score else "sent", sent_at=sent, due_at=sent, score=score,
                             answered_at=sent if score else None))
    if "D" not in customers:
        return ids
    async with sm() as s, s.begin():
        await merge_customers(s, source_id=customers["D"].id, target_id=customers["B"].id)
    ids["B"], ids["D"] = customers["B"].id, customers["D"].id
    return ids


EXPECTED: list[tuple[str, Any]] = [
    ("conversations", 6),  # C7 was created before the window
    ("customers", 5),  # B and D are one person after the merge
    ("by_channel", {"sms": 2, "web": 4}),
    ("by_day", {"2026-11-23": 2, "2026-11-24": 1, "2026-11-25": 1, "2026-11-27": 1, "2026-11-28": 1}),
    ("by_hour.10", 1), ("by_hour.11", 1), ("by_hour.12", 1), ("by_hour.16", 2), ("by_hour.20", 1), ("by_hour.09", 0),
    ("reopened", 2),
    ("bot_answers", 4),
    ("handed_off", 3),  # C2, C3, C5 (C7's handoff was before the window)
    ("escalated", 1),
    ("resolved", 7),
    ("handoff_reasons", {"asked_for_human": 2, "keyword": 1, "negative_sentiment": 1}),
    # Only C1: C2 was reopened and handed off within 24 h; C3 came back to the bot but a person had it first.
    ("automated_resolutions", 1), ("automated_pending", 0), ("automated_resolution_rate", 0.1667),
    ("contained_rate", 0.3333),  # C1, C6 never reached a person
    # First response by a person, from the handoff: C2 39 min, C3 25 min, C4 39 min (after hours: 0 business).
    ("first_response.count", 3), ("first_response.p50_s", 2340.0), ("first_response.p90_s", 2340.0),
    ("first_response.mean_s", 2060.0),
    ("first_response_business.p50_s", 1500.0), ("first_response_business.p90_s", 2340.0),
    ("first_response_business.mean_s", 1280.0),
    # Resolution, from the segment's start (created or reopened): C1 30m, C2 10m and 60m, C3 50m and 20m,
    # C4 3h, C7 10h30m; business: C3's second is on the holiday, C4 after hours, C7 only Mon 09:00-09:30.
    ("resolution.count", 7), ("resolution.p50_s", 3000.0), ("resolution.p90_s", 37800.0),
    ("resolution.mean_s", 8400.0),
    ("resolution_business.p50_s", 1800.0), ("resolution_business.p90_s", 3600.0),
    ("resolution_business.mean_s", 1542.9),
    # FCR: C2 (two replies: no), C3 (one reply, but reopened 2 days later: no), C4 (one; resolved Wed 23:00,
    # still inside its 7 days), C7 (one; its 7 days ended Mon 30 09:30, before the report).
    ("fcr", {"eligible": 4, "one_touch": 2, "pending": 1, "rate": 0.5}),
    ("aht", {"S1": {"resolved": 1, "mean_s": 9000.0, "p50_s": 9000.0},
             "U1": {"resolved": 2, "mean_s": 1500.0, "p50_s": 1500.0},
             "U2": {"resolved": 1, "mean_s": 1800.0, "p50_s": 1800.0}}),
    ("csat.sent", 4), ("csat.responses", 3), ("csat.response_rate", 0.75), ("csat.satisfied", 2),
    ("csat.csat", 0.6667), ("csat.average", 3.67),
    ("csat.by_score", {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}),
    # SLA for handoffs in the window (C2 normal, C3 high, C4 urgent, C5 normal due Mon 30 12:31 = running).
    ("sla.first_response", {"met": 2, "breached": 1, "pending": 1, "adherence": 0.6667}),
    ("sla.resolution", {"met": 3, "breached": 0, "pending": 1, "adherence": 1.0}),
    ("top_articles", [{"article_id": "refunds", "answers": 2}, {"article_id": "shipping", "answers": 2}]),
    ("unanswered", [
        {"label": "Where is my parcel?", "count": 2, "examples": ["Where is my parcel?", "where is my parcel"]},
        {"label": "can I pay by cheque", "count": 1, "examples": ["can I pay by cheque"]},
    ]),
    ("open_now", {"bot": 1, "waiting": 1}),
]

SMS_ONLY: list[tuple[str, Any]] = [
    ("conversations", 2), ("customers", 1), ("by_channel", {"sms": 2}), ("resolved", 4),
    ("first_response.p50_s", 2340.0), ("fcr", {"eligible": 3, "one_touch": 2, "pending": 1, "rate": 0.6667}),
    ("automated_resolutions", 0), ("csat.sent", 3), ("open_now", {}),
]


def dig(d: Any, path: str) -> Any:
    for part in path.split("."):
        d = d[part]
    return d


@pytest.fixture
async def history(db: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    return await replay(db)


@pytest.mark.parametrize(("path", "expected"), EXPECTED, ids=[p for p, _ in EXPECTED])
async def test_every_figure(db: async_sessionmaker[AsyncSession], history: dict[str, int], path: str,
                            expected: Any) -> None:
    async with db() as s:
        report = await build_report(s, since=SINCE, until=UNTIL, now=NOW, policy=POLICY)
    assert dig(report.to_dict(), path) == expected


@pytest.mark.parametrize(("path", "expected"), SMS_ONLY, ids=[p for p, _ in SMS_ONLY])
async def test_one_channel(db: async_sessionmaker[AsyncSession], history: dict[str, int], path: str,
                           expected: Any) -> None:
    async with db() as s:
        report = await build_report(s, since=SINCE, until=UNTIL, now=NOW, policy=POLICY, channel="sms")
    assert dig(report.to_dict(), path) == expected


async def test_pending_figures_settle_later(db: async_sessionmaker[AsyncSession], history: dict[str, int]) -> None:
    """Read a week later, nothing is pending any more and C5's clocks are breached."""
    async with db() as s:
        report = await build_report(s, since=SINCE, until=UNTIL, now=datetime(2026, 12, 10, tzinfo=UTC), policy=POLICY)
    assert report.fcr["pending"] == 0 and report.fcr["rate"] == 0.5
    assert report.sla["first_response"] == {"met": 2, "breached": 2, "pending": 0, "adherence": 0.5}
    assert report.sla["resolution"] == {"met": 3, "breached": 1, "pending": 0, "adherence": 0.75}


async def test_merge_kept_every_conversation_and_message(db: async_sessionmaker[AsyncSession],
                                                         history: dict[str, int]) -> None:
    async with db() as s:
        summary = await show_customer(s, customer_id=history["D"])  # follows the merge
    assert summary.customer.id == history["B"]
    assert sorted(c.id for c in summary.conversations) == sorted([history["C2"], history["C4"]])
    assert len(summary.identities) == 2


async def test_text_and_csv(db: async_sessionmaker[AsyncSession], history: dict[str, int]) -> None:
    async with db() as s:
        report = await build_report(s, since=SINCE, until=UNTIL, now=NOW, policy=POLICY)
    text = "\n".join(report_lines(report))
    assert "Automated resolution 17% (1)" in text
    assert "FCR 50% (2 of 4, 1 inside their 7 days)" in text
    assert "SLA first response: 67% met (2 met, 1 breached, 1 running)" in text
    rows = report_csv(report).splitlines()
    assert rows[0] == "metric,key,value"
    assert "fcr,rate,0.5" in rows and "aht,U1.mean_s,1500.0" in rows and "by_channel,web,4" in rows


async def test_every_figure_on_both_databases(any_db: async_sessionmaker[AsyncSession]) -> None:
    """The same history on SQLite and PostgreSQL gives the same figures (one pass over the table)."""
    await replay(any_db)
    async with any_db() as s:
        report = (await build_report(s, since=SINCE, until=UNTIL, now=NOW, policy=POLICY)).to_dict()
    wrong = [(path, dig(report, path), expected) for path, expected in EXPECTED if dig(report, path) != expected]
    assert wrong == []


def bot_resolved(name: str, created: datetime, *later: tuple[str, datetime, dict[str, Any]]) -> Any:
    return (name, "web", name, created, "resolved", [
        ("bot_answered", created.replace(minute=1), {"article_id": "refunds"}),
        ("resolved", created.replace(minute=30), {"by": "idle"}), *later], [])


HOLD = [
    # Reopened 23 h 59 min after its resolution: not automated.
    bot_resolved("H1", t(23, 10), ("reopened", t(24, 10, 29), {}), ("bot_answered", t(24, 10, 30), {}),
                 ("resolved", t(24, 11), {"by": "idle"})),
    # Reopened 24 h 1 min after: the resolution held, automated.
    bot_resolved("H2", t(23, 11), ("reopened", t(24, 11, 31), {}), ("bot_answered", t(24, 11, 32), {}),
                 ("resolved", t(24, 12), {"by": "idle"})),
    # A person picked the resolved conversation up 20 h later (no reopen event): not automated.
    bot_resolved("H3", t(23, 12), ("assigned", t(24, 8, 30), {"to": "U1", "role": "agent"})),
    # Resolved Sun 29 20:30: automated so far, but its 24 h are not over at the report (pending).
    bot_resolved("H4", t(29, 20)),
    # Never answered by the bot: not automated, whatever happens.
    ("H5", "web", "H5", t(25, 9), "resolved", [("resolved", t(25, 9, 30), {"by": "idle"})], []),
]


async def test_the_24_hour_hold(db: async_sessionmaker[AsyncSession]) -> None:
    await replay(db, history=HOLD, surveys=[])
    async with db() as s:
        report = (await build_report(s, since=SINCE, until=UNTIL + timedelta(days=1), now=NOW, policy=POLICY)).to_dict()
    assert (report["automated_resolutions"], report["automated_pending"]) == (2, 1)
    assert report["automated_resolution_rate"] == 0.4 and report["conversations"] == 5
    assert report["contained_rate"] == 0.8  # all but H3
