"""Carrier keywords by SMS: STOP opts out (nothing more is sent), START opts back in, HELP answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import Event, OutboxStatus
from bot.settings import Settings
from tests.channels.sms_support import CUSTOMER, REFUND_ANSWER, SHIPPING_ANSWER, SmsRig, sms_rig

HELP_TEXT = "Acme support: text your question. Msg&data rates may apply. Reply STOP to opt out."


@pytest.fixture
async def rig(
    db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> AsyncIterator[SmsRig]:
    async with sms_rig(db, settings_factory, sms_help_text=HELP_TEXT) as r:
        yield r


async def _events(rig: SmsRig) -> list[str]:
    async with rig.sm() as s:
        return list((await s.execute(select(Event.kind).order_by(Event.id))).scalars())


async def test_stop_opts_out_and_start_opts_back_in(rig: SmsRig) -> None:
    await rig.text("refund?")
    await rig.settle()
    assert rig.fake.bodies() == [REFUND_ANSWER]

    assert (await rig.text("Stop")).status_code == 200
    await rig.settle()
    identity = await rig.identity()
    assert identity is not None and identity.opted_out and identity.opted_out_at is not None
    stop = (await rig.messages("in"))[-1]
    assert stop.text == "Stop" and stop.meta["compliance"] == "stop"
    assert "kb" not in stop.meta  # no bot turn ran on it
    assert rig.desk.customer_messages[-1]["meta"]["compliance"] == "stop"  # agents see it
    assert "opted_out" in await _events(rig)

    # Nothing more reaches the number: not the bot, not an agent.
    await rig.text("shipping?")
    await rig.settle()
    (conv,) = await rig.conversations()
    await rig.agents.reply(conv.id, text="Hi, Ana here", author_id="U1", source_id="slack:C1:9.0")
    await rig.settle()
    assert rig.fake.bodies() == [REFUND_ANSWER]
    suppressed = (await rig.messages("out"))[1:]
    assert suppressed and {m.delivery_status for m in suppressed} == {"suppressed"}

    await rig.text("START")
    await rig.settle()
    identity = await rig.identity()
    assert identity is not None and not identity.opted_out and identity.opted_out_at is None
    assert "opted_in" in await _events(rig)
    assert rig.fake.bodies() == [REFUND_ANSWER]  # START itself gets no bot reply (Twilio confirms it)
    await rig.agents.reply(conv.id, text="Welcome back", author_id="U1", source_id="slack:C1:9.1")
    await rig.settle()
    assert rig.fake.bodies() == [REFUND_ANSWER, "Welcome back"]


async def test_stop_cancels_replies_still_owed(rig: SmsRig) -> None:
    await rig.text("I want a person please")
    await rig.settle()
    sent_before = len(rig.fake.messages)
    (conv,) = await rig.conversations()
    rig.fake.fail_next(429, retry_after=30)  # the next reply waits half a minute before its retry
    await rig.agents.reply(conv.id, text="One moment", author_id="U1", source_id="slack:C1:1.0")

    async def waiting_to_retry() -> bool:
        return any(e.status == OutboxStatus.PENDING and e.attempts == 1 for e in await rig.outbox())

    await rig.wait_for(waiting_to_retry)
    await rig.text("STOP")
    await rig.settle()
    entries = await rig.outbox()
    assert entries[-1].status == OutboxStatus.CANCELLED
    owed = [m for m in await rig.messages("out") if m.text == "One moment"]
    assert [m.delivery_status for m in owed] == ["suppressed"]
    assert len(rig.fake.messages) == sent_before


async def test_help_answers_with_the_help_text_and_runs_no_bot_turn(rig: SmsRig) -> None:
    await rig.text("HELP")
    await rig.settle()
    assert rig.fake.bodies(CUSTOMER) == [HELP_TEXT]
    (msg,) = await rig.messages("in")
    assert msg.meta["compliance"] == "help" and "kb" not in msg.meta
    (conv,) = await rig.conversations()
    assert conv.state == "bot"  # no handoff for a keyword
    assert rig.desk.customer_messages[0]["meta"]["compliance"] == "help"


async def test_yes_is_an_ordinary_message_unless_the_number_is_opted_out(rig: SmsRig) -> None:
    await rig.text("shipping?")
    await rig.text("yes")
    await rig.settle()
    yes = (await rig.messages("in"))[-1]
    assert "kb" in yes.meta  # the bot turn ran (low confidence: handed to a person)
    assert rig.fake.bodies() == [SHIPPING_ANSWER, rig.settings.handoff_message]
