"""Twilio's at-least-once window (issue 13, item 7): a reply whose send reached Twilio but whose worker
died (lease expiry) or gave up (timeout) before recording it is looked up at Twilio, not sent again.
`run_crashes` is also bench/sms_duplicates.py's measurement (docs/security.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.app import policy_config
from bot.messages import Address, InboundMessage, utcnow
from bot.models import OutboxEntry, OutboxStatus
from bot.settings import Settings
from bot.sms_deliver import SmsDeliverer
from bot.worker import ChannelDeliverer, Deliverer, Worker
from channels.sms import SmsChannel
from handoff.policy import Policy
from tests.bot.helpers import make_core
from tests.channels.sms_support import ACCOUNT_SID, AUTH_TOKEN, OUR_NUMBER, PUBLIC, REFUND_ANSWER, StubKB
from tests.fakes.twilio import FakeTwilio, running_fake


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with running_fake(ACCOUNT_SID, AUTH_TOKEN) as f:
        yield f


def _settings(settings_factory: Callable[..., Settings], fake: FakeTwilio, **over: object) -> Settings:
    values: dict[str, object] = dict(public_base_url=PUBLIC, twilio_account_sid=ACCOUNT_SID,
                                     twilio_auth_token=AUTH_TOKEN, twilio_from_number=OUR_NUMBER,
                                     twilio_api_base_url=fake.url, send_timeout=2.0, outbox_lease_seconds=30)
    values.update(over)
    return settings_factory(**values)


def _worker(sm: async_sessionmaker[AsyncSession], settings: Settings, name: str, *,
            look_up: bool) -> tuple[Worker, SmsChannel, Deliverer]:
    """One worker process's pieces: its own channel and deliverer (no shared memory)."""
    channel = SmsChannel.from_settings(settings)
    deliverer: Deliverer = SmsDeliverer(channel, sessionmaker=sm) if look_up else ChannelDeliverer(channel)
    return Worker(sessionmaker=sm, settings=settings, deliverers={"sms": deliverer}, worker_id=name), channel, deliverer


async def _owe(sm: async_sessionmaker[AsyncSession], settings: Settings, customer: str, n: int) -> None:
    pipeline = make_core(sm, settings, kb=StubKB(), policy=Policy(policy_config(settings))).pipeline
    await pipeline.receive(InboundMessage(Address("sms", customer), f"SM{n:032d}", "where is my refund"))
    await pipeline.drain()


def _found(deliverer: Deliverer) -> int:
    return deliverer.found_instead_of_sent if isinstance(deliverer, SmsDeliverer) else 0


@dataclass
class CrashRun:
    replies: int
    duplicates: int
    found_instead_of_sent: int
    seconds: float


async def run_crashes(sm: async_sessionmaker[AsyncSession], settings: Settings, fake: FakeTwilio, *, replies: int,
                      look_up: bool, late: float = 0.8) -> CrashRun:
    """`replies` SMS replies; each one's first worker is killed while Twilio, which has taken the message,
    is still answering (`late` seconds); another worker claims it when the lease runs out."""
    started = time.monotonic()
    found = 0
    for n in range(replies):
        customer = f"+1415555{n:04d}"
        await _owe(sm, settings, customer, n)
        a, channel_a, _ = _worker(sm, settings, "worker-a", look_up=look_up)
        fake.answer_late(late)
        taken = len(fake.messages)
        task = asyncio.get_running_loop().create_task(a.run_once())
        while len(fake.messages) == taken:  # noqa: ASYNC110 - polling the fake server's record
            # ... until Twilio has the message; its answer is still on the way
            await asyncio.sleep(0.005)
        task.cancel()  # SIGKILL: nothing after this point runs or commits
        await asyncio.gather(task, return_exceptions=True)
        await channel_a.aclose()
        async with sm() as s, s.begin():  # the dead worker's lease runs out
            await s.execute(update(OutboxEntry).where(OutboxEntry.status == OutboxStatus.SENDING)
                            .values(lease_until=utcnow() - timedelta(seconds=1)))
        b, channel_b, deliverer = _worker(sm, settings, "worker-b", look_up=look_up)
        while await b.run_once():
            pass
        await channel_b.aclose()
        found += _found(deliverer)
    bodies = [m["to"] for m in fake.messages]
    duplicates = len(bodies) - len(set(bodies))
    return CrashRun(replies, duplicates, found, time.monotonic() - started)


async def test_a_worker_killed_mid_send_does_not_send_twice(
    db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings], fake: FakeTwilio
) -> None:
    settings = _settings(settings_factory, fake)
    run = await run_crashes(db, settings, fake, replies=5, look_up=True)
    assert (run.duplicates, run.found_instead_of_sent) == (0, 5)
    assert fake.list_calls == 5
    async with db() as s:
        entries = list((await s.execute(select(OutboxEntry))).scalars())
    assert all(e.status == OutboxStatus.DELIVERED for e in entries)
    assert sorted(str(e.platform_id) for e in entries) == sorted(m["sid"] for m in fake.messages)  # SIDs recorded


async def test_without_the_look_up_every_crash_is_a_duplicate(
    db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings], fake: FakeTwilio
) -> None:
    """The window the look-up closes, measured the same way (what ChannelDeliverer alone does)."""
    run = await run_crashes(db, _settings(settings_factory, fake), fake, replies=3, look_up=False)
    assert run.duplicates == 3 and fake.list_calls == 0


async def test_a_timeout_after_twilio_took_it_is_found_not_resent(
    db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings], fake: FakeTwilio
) -> None:
    settings = _settings(settings_factory, fake, send_timeout=0.3, outbox_backoff_initial=0.01)
    await _owe(db, settings, "+14155550123", 1)
    worker, channel, deliverer = _worker(db, settings, "w", look_up=True)
    fake.answer_late(0.8)  # accepted, but the answer comes after our timeout
    await worker.run_once()
    assert len(fake.messages) == 1
    await asyncio.sleep(0.1)
    while await worker.run_once() == 0:  # noqa: ASYNC110 - until the backoff lets the retry run
        await asyncio.sleep(0.05)
    await channel.aclose()
    assert fake.bodies() == [REFUND_ANSWER] and _found(deliverer) == 1


async def test_an_identical_earlier_reply_is_not_mistaken_for_this_one(
    db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings], fake: FakeTwilio
) -> None:
    """Two replies owed with the same text: the second's retry finds the first's SID, held by the first
    entry, and sends its own."""
    settings = _settings(settings_factory, fake, outbox_backoff_initial=0.01)
    async with db() as s, s.begin():
        for _ in range(2):
            await store.enqueue(s, channel="sms", order_key="sms:+14155550123",
                                payload={"to": "+14155550123", "text": REFUND_ANSWER})
    worker, channel, deliverer = _worker(db, settings, "w", look_up=True)
    fake.accept_next()
    fake.fail_next(500)  # the second reply's first attempt fails: its retry looks up first
    for _ in range(100):
        await worker.run_once()
        async with db() as s:
            if all(e.status == OutboxStatus.DELIVERED for e in (await s.execute(select(OutboxEntry))).scalars()):
                break
        await asyncio.sleep(0.02)
    await channel.aclose()
    assert fake.bodies() == [REFUND_ANSWER, REFUND_ANSWER]
    assert fake.list_calls == 1 and _found(deliverer) == 0
