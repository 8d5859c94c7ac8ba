"""Queue chores through the real pipeline: re-paging until taken, auto-assignment under a cap,
release, idle timers, the reopen window setting."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.agents import Agents
from bot.auto_assign import ROUND_LOCK, auto_assign, waiting_queue
from bot.engine import Pipeline
from bot.idle_close import close_idle
from bot.messages import Address, InboundMessage, utcnow
from bot.models import Conversation, Event, Message
from bot.models import ConversationState as S
from bot.presence import open_loads, set_presence
from bot.settings import Settings
from bot.sla_repage import REPAGED, repage_breaches
from bot.sla_watch import check_sla
from tests.bot.helpers import TableSearcher, make_core
from tests.bot.test_sla_watch import ALWAYS, RecordingDesk, handed_off


def make_parts(db: async_sessionmaker[AsyncSession], settings: Settings) -> tuple[Pipeline, Agents]:
    core = make_core(db, settings, kb=TableSearcher({"refund": ("refunds", 0.9)}))
    return core.pipeline, core.agents


async def test_a_breach_is_paged_again_every_interval_until_someone_takes_it(
    any_db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    db = any_db
    conv_id = await handed_off(db, at=utcnow() - timedelta(hours=5))  # normal: 4 h first response
    desk = RecordingDesk()
    assert len(await check_sla(sessionmaker=db, desk=desk, policy=ALWAYS)) == 1
    every = timedelta(minutes=30)
    t0 = utcnow()
    assert await repage_breaches(sessionmaker=db, desk=desk, policy=ALWAYS, every=every,
                                 now=t0 + timedelta(minutes=10)) == []
    assert await repage_breaches(sessionmaker=db, desk=desk, policy=ALWAYS, every=every,
                                 now=t0 + timedelta(minutes=31)) == [(conv_id, "first_response")]
    assert await repage_breaches(sessionmaker=db, desk=desk, policy=ALWAYS, every=every,
                                 now=t0 + timedelta(minutes=40)) == []
    assert await repage_breaches(sessionmaker=db, desk=desk, policy=ALWAYS, every=every,
                                 now=t0 + timedelta(minutes=62)) == [(conv_id, "first_response")]
    assert len(desk.breaches) == 3
    async with db() as s:
        pages = [e.data["page"] for e in (await s.execute(select(Event).where(Event.kind == REPAGED))).scalars()]
    assert pages == [2, 3]
    # Someone takes it: no more pages.
    _, agents = make_parts(db, settings_factory())
    await agents.assign(conv_id, user_id="U1", user_name="Ann")
    assert await repage_breaches(sessionmaker=db, desk=desk, policy=ALWAYS, every=every,
                                 now=t0 + timedelta(hours=3)) == []
    assert await repage_breaches(sessionmaker=db, desk=desk, policy=ALWAYS, every=timedelta(0), now=t0) == []
    assert len(desk.breaches) == 3


async def test_auto_assignment_follows_priority_and_never_exceeds_the_cap(
    any_db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    db = any_db
    now = utcnow()
    ids = {}
    for name, prio, minutes in [("old-normal", "normal", 90), ("urgent", "urgent", 5), ("low", "low", 300),
                                ("high", "high", 10), ("new-normal", "normal", 20)]:
        ids[name] = await handed_off(db, at=now - timedelta(minutes=minutes), priority=prio, address=name)
    async with db() as s:
        queue = await waiting_queue(s)
    assert [q.conversation_id for q in queue] == [ids[n] for n in ("urgent", "high", "old-normal", "new-normal", "low")]
    async with db() as s, s.begin():
        await set_presence(s, agent_id="U1", status="available", name="Ann", cap=1)
        await set_presence(s, agent_id="U2", status="available", name="Bo")  # the default cap (2)
        await set_presence(s, agent_id="U3", status="away", name="Cy")
    _, agents = make_parts(db, settings_factory())
    plan = await auto_assign(sessionmaker=db, agents=agents, strategy="least_loaded", default_cap=2)
    assert [c for c, _ in plan] == [ids["urgent"], ids["high"], ids["old-normal"]]  # room for 3: 1 + 2
    assert await auto_assign(sessionmaker=db, agents=agents, strategy="least_loaded", default_cap=2) == []
    async with db() as s:
        convs = {c.id: c for c in (await s.execute(select(Conversation))).scalars()}
    owners = [convs[c].assignee_id for c, _ in plan]
    assert owners.count("U1") == 1 and owners.count("U2") == 2 and "U3" not in owners
    assert all(convs[c].state == S.ASSIGNED for c, _ in plan)
    assert convs[ids["low"]].state == S.WAITING
    # Ann resolves hers: she has room again and takes the next in line.
    ann = next(c for c, a in plan if a == "U1")
    await agents.resolve(ann, by="U1")
    assert await auto_assign(sessionmaker=db, agents=agents, strategy="round_robin", default_cap=2) == [
        (ids["new-normal"], "U1")]


async def test_release_puts_it_back_in_the_queue(any_db: async_sessionmaker[AsyncSession],
                                                 settings_factory: Callable[..., Settings]) -> None:
    db = any_db
    _, agents = make_parts(db, settings_factory())
    conv_id = await handed_off(db, at=utcnow())
    await agents.assign(conv_id, user_id="U1", user_name="Ann")
    refused = await agents.unassign(conv_id, by="U2")
    assert not refused.released and "someone else" in refused.message
    done = await agents.unassign(conv_id, by="U1")
    assert done.released and "back in the queue" in done.message
    async with db() as s:
        conv = await s.get(Conversation, conv_id)
        assert conv is not None and (conv.state, conv.assignee_id) == (S.WAITING, None)
    again = await agents.unassign(conv_id, by="U1")
    assert not again.released and "not assigned" in again.message


async def test_idle_timers(any_db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]) -> None:
    db = any_db
    pipeline, agents = make_parts(db, settings_factory())
    quiet = (await pipeline.receive(InboundMessage(Address("web", "quiet"), "q1", "refund?"))).conversation_id
    chatty = (await pipeline.receive(InboundMessage(Address("web", "chatty"), "c1", "refund?"))).conversation_id
    await pipeline.drain()
    waiting = await handed_off(db, at=utcnow() - timedelta(days=5), address="w")
    await agents.assign(waiting, user_id="U1", user_name="Ann")
    await agents.reply(waiting, text="Could you send the order number?", author_id="U1")
    answered = await handed_off(db, at=utcnow() - timedelta(days=5), address="a")
    await agents.assign(answered, user_id="U1", user_name="Ann")
    await agents.reply(answered, text="Could you send the order number?", author_id="U1")
    async with db() as s, s.begin():  # age everything but the chatty customer's conversation
        old = utcnow() - timedelta(days=4)
        for cid in (quiet, waiting, answered):
            await s.execute(update(Message).where(Message.conversation_id == cid).values(created_at=old))
            await s.execute(update(Conversation).where(Conversation.id == cid).values(updated_at=old))
        await s.execute(update(Conversation).where(Conversation.id == chatty).values(updated_at=old))
    await pipeline.receive(InboundMessage(Address("web", "a"), "a2", "it is 12345"))  # the customer answered
    await pipeline.drain()
    async with db() as s, s.begin():
        await s.execute(update(Conversation).where(Conversation.id == answered).values(updated_at=old))
    closed = await close_idle(sessionmaker=db, agents=agents, bot_idle=timedelta(hours=24),
                              waiting_on_customer=timedelta(days=3), message="Closing this, reply to reopen.")
    assert sorted(closed) == sorted([(quiet, "idle"), (waiting, "waiting_on_customer")])
    async with db() as s:
        states = {c.id: c.state for c in (await s.execute(select(Conversation))).scalars()}
        last = (await s.execute(select(Message).where(Message.conversation_id == waiting)
                                .order_by(Message.id.desc()).limit(1))).scalar_one()
    assert states[quiet] == S.RESOLVED and states[waiting] == S.RESOLVED
    assert states[chatty] == S.BOT and states[answered] == S.ASSIGNED
    assert last.text == "Closing this, reply to reopen." and last.author_kind == "system"


async def test_reopen_window_is_a_setting(any_db: async_sessionmaker[AsyncSession],
                                          settings_factory: Callable[..., Settings]) -> None:
    db = any_db
    pipeline, agents = make_parts(db, settings_factory(reopen_window_hours=2))
    first = (await pipeline.receive(InboundMessage(Address("web", "r"), "r1", "refund?"))).conversation_id
    await pipeline.drain()
    await agents.resolve(first, by="idle")
    async with db() as s, s.begin():
        await s.execute(update(Conversation).where(Conversation.id == first)
                        .values(resolved_at=utcnow() - timedelta(hours=1)))
    assert (await pipeline.receive(InboundMessage(Address("web", "r"), "r2", "refund?"))).conversation_id == first
    await pipeline.drain()
    await agents.resolve(first, by="idle")
    async with db() as s, s.begin():
        await s.execute(update(Conversation).where(Conversation.id == first)
                        .values(resolved_at=utcnow() - timedelta(hours=3)))
    assert (await pipeline.receive(InboundMessage(Address("web", "r"), "r3", "refund?"))).conversation_id != first
    await pipeline.drain()


@pytest.mark.postgres
async def test_concurrent_rounds_never_push_an_agent_past_the_cap(
    pg_db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    """Several workers sweeping at once (PostgreSQL): one round at a time, so the caps hold; a round
    that finds another one running skips (its conversations wait for the next sweep)."""
    db = pg_db
    now = utcnow()
    for n in range(8):
        await handed_off(db, at=now - timedelta(minutes=60 - n), address=f"q{n}")
    async with db() as s, s.begin():
        await set_presence(s, agent_id="U1", status="available", name="Ann", cap=1)
        await set_presence(s, agent_id="U2", status="available", name="Bo", cap=2)
    # Another worker's round is on: this one does nothing.
    async with db() as other, other.begin():
        await other.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": ROUND_LOCK})
        skipped = await auto_assign(sessionmaker=db, agents=make_parts(db, settings_factory())[1],
                                    strategy="least_loaded", default_cap=5)
    assert skipped == []

    rounds = await asyncio.gather(*[
        auto_assign(sessionmaker=db, agents=make_parts(db, settings_factory())[1], strategy=strategy,
                    default_cap=5) for strategy in ("least_loaded", "round_robin", "least_loaded", "round_robin")])
    async with db() as s:
        loads = await open_loads(s)
    assert loads == {"U1": 1, "U2": 2}
    assert sum(len(r) for r in rounds) == 3


async def test_an_agent_who_takes_one_meanwhile_is_not_given_another(
    any_db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    """The round's plan is made from loads read at its start; each assignment checks again, so an
    agent who took a conversation themselves in between is not pushed past their cap."""
    db = any_db
    now = utcnow()
    queued = [await handed_off(db, at=now - timedelta(minutes=30 - n), address=f"m{n}") for n in range(3)]
    async with db() as s, s.begin():
        await set_presence(s, agent_id="U1", status="available", name="Ann", cap=2)
    _, agents = make_parts(db, settings_factory())

    class TakesFirst:
        """Ann takes the last conversation herself while the round is on (after it read the loads)."""

        taken = False

        async def assign(self, conversation_id: int, **kw: Any) -> Any:
            if not self.taken:
                self.taken = True
                await agents.assign(queued[-1], user_id="U1", user_name="Ann")
            return await agents.assign(conversation_id, **kw)

    plan = await auto_assign(sessionmaker=db, agents=TakesFirst(), strategy="least_loaded", default_cap=5)
    assert plan == [(queued[0], "U1")]  # the plan had queued[1] for her too: skipped, she is at her cap
    async with db() as s:
        assert await open_loads(s) == {"U1": 2}
        convs = {c.id: c for c in (await s.execute(select(Conversation))).scalars()}
    assert convs[queued[-1]].assignee_id == "U1" and convs[queued[1]].state == S.WAITING
