"""The outbox worker: retries with backoff, dead letters, ordering, and two workers on PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.db import make_engine, make_sessionmaker
from bot.messages import Address, OutboundMessage, SendResult
from bot.models import OutboxEntry, OutboxStatus
from bot.settings import Settings
from bot.worker import Backoff, ChannelDeliverer, Worker, retry_dead
from tests.bot.helpers import ScriptedChannel, permanent, transient


async def _owe(sm: async_sessionmaker[AsyncSession], n: int, *, key: Callable[[int], str] = str) -> list[int]:
    ids = []
    async with sm() as s, s.begin():
        for i in range(n):
            e = await store.enqueue(s, channel="web", order_key=f"web:{key(i)}",
                                    payload={"to": key(i), "text": f"m{i}"})
            ids.append(e.id)
    return ids


async def _drain(worker: Worker, *, until: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + until
    while loop.time() < deadline:
        if not await worker.run_once():
            async with worker.sessionmaker() as s:
                owed = (await s.execute(select(func.count()).where(
                    OutboxEntry.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING))))).scalar_one()
            if not owed:
                return
            await asyncio.sleep(0.02)
    raise AssertionError("outbox not drained in time")


async def _statuses(sm: async_sessionmaker[AsyncSession]) -> list[tuple[str, int, str | None]]:
    async with sm() as s:
        rows = (await s.execute(select(OutboxEntry).order_by(OutboxEntry.id))).scalars()
        return [(e.status, e.attempts, e.last_error) for e in rows]


async def test_failing_then_recovering_channel_delivers_once(
    any_db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    channel = ScriptedChannel([transient(), transient(retry_after=0.2), transient()])
    worker = Worker(sessionmaker=any_db, settings=settings_factory(), deliverers={"web": ChannelDeliverer(channel)})
    await _owe(any_db, 1)
    await _drain(worker)
    assert [m.text for _, m in channel.sent] == ["m0"]
    assert channel.calls == 4
    [(status, attempts, error)] = await _statuses(any_db)
    assert (status, attempts, error) == ("delivered", 4, None)


async def test_dead_letter_after_the_cap_and_retry_from_cli_function(
    any_db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    channel = ScriptedChannel([transient()] * 3)
    worker = Worker(sessionmaker=any_db, settings=settings_factory(outbox_max_attempts=3),
                    deliverers={"web": ChannelDeliverer(channel)})
    await _owe(any_db, 1)
    await _drain(worker)
    [(status, attempts, error)] = await _statuses(any_db)
    assert status == "dead" and attempts == 3 and error and "503" in error
    assert channel.sent == []
    async with any_db() as s, s.begin():
        assert await retry_dead(s) == 1
    await _drain(worker)
    assert [m.text for _, m in channel.sent] == ["m0"]
    assert (await _statuses(any_db))[0][0] == "delivered"


async def test_permanent_error_dead_letters_at_once_and_calls_the_hook(
    any_db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    seen: list[str] = []

    async def hook(session: AsyncSession, entry: OutboxEntry, exc: Exception) -> None:
        seen.append(f"{entry.id}:{type(exc).__name__}")

    channel = ScriptedChannel([permanent()])
    worker = Worker(sessionmaker=any_db, settings=settings_factory(), deliverers={"web": ChannelDeliverer(channel)},
                    on_failure=hook)
    [eid] = await _owe(any_db, 1)
    await _drain(worker)
    assert seen == [f"{eid}:PermanentSendError"]
    assert (await _statuses(any_db))[0][:2] == ("dead", 1)


async def test_one_customers_messages_go_out_in_order_despite_failures(
    any_db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    channel = ScriptedChannel([transient(), transient(), transient()])
    worker = Worker(sessionmaker=any_db, settings=settings_factory(), deliverers={"web": ChannelDeliverer(channel)})
    await _owe(any_db, 6, key=lambda i: "same-customer")
    await _drain(worker)
    assert [m.text for _, m in channel.sent] == [f"m{i}" for i in range(6)]


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    b = Backoff(initial=1.0, maximum=30.0)
    assert 0.5 <= b.delay(1) <= 1.0
    assert 4.0 <= b.delay(4) <= 8.0
    assert 15.0 <= b.delay(20) <= 30.0
    assert b.delay(1, retry_after=12.0) == 12.0


class CountingChannel:
    name = "web"

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()

    def router(self, host: object) -> object:
        raise NotImplementedError

    async def send(self, to: Address, message: OutboundMessage) -> SendResult:
        await asyncio.sleep(0)  # let the other worker interleave
        self.counts[int(to.address)] += 1
        return SendResult(platform_id=f"x{to.address}")

    async def aclose(self) -> None:
        return None


@pytest.mark.postgres
async def test_two_workers_on_postgres_deliver_1000_entries_exactly_once(
    pg_url: str, settings_factory: Callable[..., Settings]
) -> None:
    from bot.db import Base, import_all_models

    import_all_models()
    engines = [make_engine(pg_url), make_engine(pg_url)]
    async with engines[0].begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    sms = [make_sessionmaker(e) for e in engines]
    await _owe(sms[0], 1000)
    channel = CountingChannel()
    settings = settings_factory(database_url=pg_url)
    workers = [
        Worker(sessionmaker=sm, settings=settings, deliverers={"web": ChannelDeliverer(channel)},
               worker_id=f"w{i}", batch_size=25)
        for i, sm in enumerate(sms)
    ]
    await asyncio.wait_for(asyncio.gather(*(_drain(w, until=60) for w in workers)), timeout=90)
    assert len(channel.counts) == 1000
    assert max(channel.counts.values()) == 1
    async with sms[0]() as s:
        by_status = dict((await s.execute(select(OutboxEntry.status, func.count()).group_by(OutboxEntry.status))).all())
        by_worker = dict((await s.execute(select(OutboxEntry.claimed_by, func.count())
                                          .group_by(OutboxEntry.claimed_by))).all())
    assert by_status == {"delivered": 1000}
    assert set(by_worker) == {"w0", "w1"}  # both really worked
    for e in engines:
        await e.dispose()


async def test_an_expired_lease_counts_as_an_attempt_so_deliverers_look_before_resending(
    any_db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    """A worker killed after the platform took a message leaves the entry leased; whoever reclaims
    it sees attempts > 0 (the Slack deliverer then looks for its post before posting again)."""
    from datetime import timedelta

    from sqlalchemy import update

    from bot.messages import utcnow

    settings = settings_factory(outbox_lease_seconds=60)
    dead_worker = Worker(sessionmaker=any_db, settings=settings, deliverers={"web": ChannelDeliverer(
        ScriptedChannel([]))}, worker_id="killed")
    [entry_id] = await _owe(any_db, 1)
    [claimed] = await dead_worker.claim(10)  # claimed, then the process dies before committing
    assert claimed.attempts == 0
    async with any_db() as s, s.begin():
        await s.execute(update(OutboxEntry).where(OutboxEntry.id == entry_id)
                        .values(lease_until=utcnow() - timedelta(seconds=1)))
    seen: list[int] = []

    class Looking:
        async def deliver(self, entry: OutboxEntry) -> SendResult:
            seen.append(entry.attempts)
            return SendResult(platform_id="p1", status="delivered")

    other = Worker(sessionmaker=any_db, settings=settings, deliverers={"web": Looking()}, worker_id="other")
    await _drain(other)
    assert seen == [1]
    assert await _statuses(any_db) == [("delivered", 2, None)]
