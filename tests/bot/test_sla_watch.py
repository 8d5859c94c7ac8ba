"""The SLA sweep: pages once per breached clock (durably, across processes and concurrent sweeps),
never for clocks met in time, warns once before, and counts business hours. Time is injected."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import make_engine, make_sessionmaker
from bot.messages import Address, utcnow
from bot.models import ChannelIdentity, Conversation, Customer, Event
from bot.models import ConversationState as S
from bot.settings import Settings
from bot.sla_watch import BREACHED, WARNING, check_sla, describe_clock, human_duration
from handoff.policy import Policy, PolicyConfig
from handoff.sla import SLAPolicy, sla_for_conversation
from tests.bot.helpers import TableSearcher, make_core

ALWAYS = SLAPolicy.from_spec(hours="24/7", targets="urgent=15m/4h,high=1h/8h,normal=4h/24h")
FRI_1630 = datetime(2024, 3, 1, 16, 30, tzinfo=UTC)  # a Friday (London is on UTC in March before the 31st)


class RecordingDesk:
    """Records the SLA hooks the sweep calls (the Slack desk's rendering is tested in tests/bot/desk/test_slack.py)."""

    def __init__(self, *, fail_for: set[int] | None = None) -> None:
        self.breaches: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.fail_for = fail_for or set()

    async def on_sla_breach(self, session: AsyncSession, *, conversation: Conversation, clock_name: str,
                            due_at: datetime, overdue_seconds: float) -> None:
        if conversation.id in self.fail_for:
            raise RuntimeError("the desk is down")
        self.breaches.append({"conversation_id": conversation.id, "clock": clock_name, "due_at": due_at,
                              "overdue_seconds": overdue_seconds})

    async def on_sla_warning(self, session: AsyncSession, *, conversation: Conversation, clock_name: str,
                             due_at: datetime, remaining_seconds: float) -> None:
        self.warnings.append({"conversation_id": conversation.id, "clock": clock_name, "due_at": due_at,
                              "remaining_seconds": remaining_seconds})


async def handed_off(sm: async_sessionmaker[AsyncSession], *, at: datetime, priority: str = "normal",
                     state: str = S.WAITING, address: str = "sess-1") -> int:
    async with sm() as s, s.begin():
        customer = Customer(display_name="Dana")
        s.add(customer)
        await s.flush()
        identity = ChannelIdentity(customer_id=customer.id, channel="web", address=address)
        s.add(identity)
        await s.flush()
        conv = Conversation(customer_id=customer.id, identity_id=identity.id, channel="web", state=state,
                            priority=priority, handed_off_at=at, handoff_reason="asked_for_human")
        s.add(conv)
        await s.flush()
        return conv.id


async def sla_events(sm: async_sessionmaker[AsyncSession], kind: str = BREACHED) -> list[Event]:
    async with sm() as s:
        return list((await s.execute(select(Event).where(Event.kind == kind).order_by(Event.id))).scalars())


async def test_a_breach_pages_once_even_across_a_restart(db: async_sessionmaker[AsyncSession],
                                                         tmp_path: Path) -> None:
    start = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
    conv_id = await handed_off(db, at=start, priority="high")  # 1h first response, 24/7 here
    desk = RecordingDesk()
    assert await check_sla(sessionmaker=db, desk=desk, policy=ALWAYS, now=start + timedelta(minutes=59),
                           warn_at=0) == []
    now = start + timedelta(hours=1, minutes=5)
    [breach] = await check_sla(sessionmaker=db, desk=desk, policy=ALWAYS, now=now)
    assert (breach.conversation_id, breach.clock, breach.priority, breach.state) == (conv_id, "first_response",
                                                                                      "high", S.WAITING)
    assert breach.due_at == start + timedelta(hours=1)
    assert breach.overdue_seconds == 300
    assert desk.breaches == [{"conversation_id": conv_id, "clock": "first_response",
                              "due_at": start + timedelta(hours=1), "overdue_seconds": 300}]
    # Again, later: nothing new (the resolution clock, 8h, is still running).
    assert await check_sla(sessionmaker=db, desk=desk, policy=ALWAYS, now=now + timedelta(hours=1)) == []
    # A new process (a fresh engine on the same file) does not page again either.
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    try:
        again = await check_sla(sessionmaker=make_sessionmaker(engine), desk=desk, policy=ALWAYS,
                                now=now + timedelta(hours=2))
    finally:
        await engine.dispose()
    assert again == []
    assert len(desk.breaches) == 1
    [event] = await sla_events(db)
    assert event.conversation_id == conv_id
    assert event.data["clock"] == "first_response"
    assert event.data["due_at"] == (start + timedelta(hours=1)).isoformat()
    assert event.data["overdue_seconds"] == 300


async def test_concurrent_sweeps_page_once(db: async_sessionmaker[AsyncSession], tmp_path: Path) -> None:
    start = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
    ids = [await handed_off(db, at=start, priority="urgent", address=f"s{i}") for i in range(3)]
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    desk = RecordingDesk()
    try:
        results = await asyncio.gather(*(
            check_sla(sessionmaker=sm, desk=desk, policy=ALWAYS, now=start + timedelta(minutes=20))
            for sm in (db, make_sessionmaker(engine), db)
        ))
    finally:
        await engine.dispose()
    paged = sorted(b.conversation_id for r in results for b in r)
    assert paged == ids
    assert sorted(b["conversation_id"] for b in desk.breaches) == ids
    assert len(await sla_events(db)) == 3


async def test_answered_in_time_never_pages_then_the_resolution_clock_does(
    db: async_sessionmaker[AsyncSession], settings_factory: Any
) -> None:
    """Through the real pipeline: a handoff, an agent's reply in time, then no resolution."""
    settings: Settings = settings_factory()
    core = make_core(db, settings, kb=TableSearcher({}), policy=Policy(PolicyConfig.from_settings(settings)))
    pipeline, agents = core.pipeline, core.agents
    await pipeline.request_human(Address("web", "sess-9"))
    async with db() as s:
        conv = (await s.execute(select(Conversation))).scalar_one()
    assert conv.state == S.WAITING and conv.priority == "normal" and conv.handed_off_at is not None
    await agents.reply(conv.id, text="Hi, I'm here", author_id="U1", author_name="Ann")
    started = conv.handed_off_at
    desk = RecordingDesk()
    for hours in (1, 3.9, 5, 23):  # normal: 4h first response (met at once), 24h resolution
        assert await check_sla(sessionmaker=db, desk=desk, policy=ALWAYS,
                               now=started + timedelta(hours=hours), warn_at=0) == []
    assert desk.breaches == []
    [breach] = await check_sla(sessionmaker=db, desk=desk, policy=ALWAYS, now=started + timedelta(hours=25))
    assert (breach.clock, breach.state) == ("resolution", S.ASSIGNED)
    assert breach.due_at == started + timedelta(hours=24)
    # Resolved: closed clocks are never paged, whatever the time.
    await agents.resolve(conv.id, by="U1")
    assert await check_sla(sessionmaker=db, desk=desk, policy=ALWAYS, now=started + timedelta(days=9)) == []
    assert [b["clock"] for b in desk.breaches] == ["resolution"]
    await pipeline.drain()


async def test_business_hours_friday_evening_is_not_overdue_on_saturday(
    db: async_sessionmaker[AsyncSession],
) -> None:
    policy = SLAPolicy.from_spec(hours="mon-fri 09:00-17:00", timezone="Europe/London",
                                 targets="urgent=15m/4h,normal=4h/24h")
    normal = await handed_off(db, at=FRI_1630, address="n")
    desk = RecordingDesk()
    saturday_noon = FRI_1630 + timedelta(hours=19, minutes=30)
    assert await check_sla(sessionmaker=db, desk=desk, policy=policy, now=saturday_noon) == []
    assert await check_sla(sessionmaker=db, desk=desk, policy=policy, now=saturday_noon + timedelta(days=1)) == []
    assert desk.breaches == desk.warnings == []
    # Monday: 30 min on Friday + 09:00-12:00 = 3.5 of 4 business hours (> 80%): one warning, no page.
    monday_noon = saturday_noon + timedelta(days=2)
    assert await check_sla(sessionmaker=db, desk=desk, policy=policy, now=monday_noon) == []
    assert [(w["conversation_id"], w["clock"], w["remaining_seconds"]) for w in desk.warnings] == [
        (normal, "first_response", 1800)]
    assert await check_sla(sessionmaker=db, desk=desk, policy=policy, now=monday_noon + timedelta(minutes=10)) == []
    assert len(desk.warnings) == 1
    [breach] = await check_sla(sessionmaker=db, desk=desk, policy=policy, now=monday_noon + timedelta(minutes=31))
    assert (breach.conversation_id, breach.clock) == (normal, "first_response")
    assert breach.due_at == datetime(2024, 3, 4, 12, 30, tzinfo=UTC)
    assert breach.overdue_seconds == 60
    [warning] = await sla_events(db, WARNING)
    assert warning.data["clock"] == "first_response" and warning.data["remaining_seconds"] == 1800


async def test_urgent_counts_around_the_clock_and_a_failing_desk_is_retried(
    db: async_sessionmaker[AsyncSession],
) -> None:
    policy = SLAPolicy.from_spec(hours="mon-fri 09:00-17:00", timezone="Europe/London",
                                 targets="urgent=15m/4h,normal=4h/24h")
    urgent = await handed_off(db, at=FRI_1630, priority="urgent", state=S.ESCALATED, address="u")
    other = await handed_off(db, at=FRI_1630, priority="urgent", address="o")
    desk = RecordingDesk(fail_for={urgent})
    paged = await check_sla(sessionmaker=db, desk=desk, policy=policy, now=FRI_1630 + timedelta(minutes=16))
    # The failing page rolled back (no event): the other conversation was still paged.
    assert [b.conversation_id for b in paged] == [other]
    assert [e.conversation_id for e in await sla_events(db)] == [other]
    desk.fail_for.clear()
    paged = await check_sla(sessionmaker=db, desk=desk, policy=policy, now=FRI_1630 + timedelta(minutes=17))
    assert [(b.conversation_id, b.state, b.clock) for b in paged] == [(urgent, S.ESCALATED, "first_response")]
    assert sorted(b["conversation_id"] for b in desk.breaches) == sorted([urgent, other])


async def test_bot_and_never_handed_off_conversations_are_ignored(db: async_sessionmaker[AsyncSession]) -> None:
    start = utcnow() - timedelta(days=30)
    await handed_off(db, at=start, state=S.BOT, address="b")
    await handed_off(db, at=start, state=S.RESOLVED, address="r")
    desk = RecordingDesk()
    assert await check_sla(sessionmaker=db, desk=desk, policy=ALWAYS) == []
    assert desk.breaches == desk.warnings == []


def test_human_duration_and_describe_clock() -> None:
    assert [human_duration(s) for s in (0, 40, 60, 3725, -3725, 90000, 200000)] == [
        "0 s", "40 s", "1 min", "1 h 2 min", "1 h 2 min", "1 d 1 h", "2 d 7 h"]
    conv = Conversation(priority="normal", handed_off_at=FRI_1630, first_human_response_at=None, resolved_at=None)
    status = sla_for_conversation(conv, policy=ALWAYS, now=FRI_1630 + timedelta(hours=5))
    assert status is not None
    assert describe_clock(status.first_response) == "OVERDUE 1 h"
    assert describe_clock(status.resolution) == "due in 19 h"
    conv.first_human_response_at = FRI_1630 + timedelta(minutes=5)
    status = sla_for_conversation(conv, policy=ALWAYS, now=FRI_1630 + timedelta(hours=5))
    assert status is not None and describe_clock(status.first_response) == "met"


async def test_cli_sla_lists_open_conversations_with_their_clocks(
    db: async_sessionmaker[AsyncSession], tmp_path: Path, monkeypatch: Any
) -> None:
    import json

    from typer.testing import CliRunner

    from bot.cli import app

    late = await handed_off(db, at=utcnow() - timedelta(hours=5), address="late")  # normal: 4h first response
    fresh = await handed_off(db, at=utcnow() - timedelta(minutes=10), priority="high", address="fresh")
    await handed_off(db, at=utcnow() - timedelta(hours=5), state=S.RESOLVED, address="done")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'test.db'}")
    monkeypatch.setenv("SLA_BUSINESS_HOURS", "24/7")
    runner = CliRunner()
    table = await asyncio.to_thread(runner.invoke, app, ["sla"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert "first response" in lines[0]
    [late_line] = [line for line in lines if line.split()[0] == str(late)]
    assert "OVERDUE 1 h" in late_line and "due in 18 h 59 min" in late_line
    [fresh_line] = [line for line in lines if line.split()[0] == str(fresh)]
    assert "due in 49 min" in fresh_line and "high" in fresh_line
    as_json = await asyncio.to_thread(runner.invoke, app, ["sla", "--json"])
    rows = json.loads(as_json.output)
    assert [r["id"] for r in rows] == [late, fresh]
    assert rows[0]["first_response"]["breached"] is True and rows[0]["resolution"]["breached"] is False
