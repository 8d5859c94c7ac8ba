"""Outbound SMS: error mapping, recovery through the outbox, order, opt-outs, long replies."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.messages import Address, OutboundMessage
from bot.models import OutboxStatus
from bot.settings import Settings
from channels.base import PermanentSendError, RecipientOptedOut, TransientSendError
from channels.sms import SmsChannel
from channels.sms_segments import segment_count, split_text
from tests.channels.sms_support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CUSTOMER,
    OUR_NUMBER,
    PUBLIC,
    REFUND_ANSWER,
    SmsRig,
    sms_rig,
)
from tests.fakes.twilio import FakeTwilio, running_fake

TO = Address("sms", CUSTOMER)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTwilio]:
    async with running_fake(ACCOUNT_SID, AUTH_TOKEN) as f:
        yield f


def make_channel(fake: FakeTwilio, **kw: object) -> SmsChannel:
    values: dict[str, object] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "public_base_url": PUBLIC,
        "from_number": OUR_NUMBER,
        "api_base_url": fake.url,
        "send_timeout": 1.0,
    }
    values.update(kw)
    return SmsChannel(**values)  # type: ignore[arg-type]


@pytest.fixture
async def channel(fake: FakeTwilio) -> AsyncIterator[SmsChannel]:
    ch = make_channel(fake)
    yield ch
    await ch.aclose()


# ---- one send, against the fake API ------------------------------------------------------------------


async def test_send_uses_the_real_client_and_returns_the_sid(channel: SmsChannel, fake: FakeTwilio) -> None:
    result = await channel.send(TO, OutboundMessage("Your order shipped.", message_id=1))
    (msg,) = fake.messages
    assert result.platform_id == msg["sid"] and result.status == "queued"
    form = fake.requests[0].form
    assert form == {
        "To": CUSTOMER,
        "From": OUR_NUMBER,
        "Body": "Your order shipped.",
        "StatusCallback": PUBLIC + "/twilio/status",
    }


async def test_a_messaging_service_replaces_the_from_number(fake: FakeTwilio) -> None:
    ch = make_channel(fake, from_number=None, messaging_service_sid="MG" + "2" * 32)
    try:
        result = await ch.send(TO, OutboundMessage("hello", message_id=1))
    finally:
        await ch.aclose()
    form = fake.requests[0].form
    assert form["MessagingServiceSid"] == "MG" + "2" * 32 and "From" not in form
    assert result.status == "queued"  # Twilio says "accepted" for a service; still owed to the handset


@pytest.mark.parametrize(
    ("status", "code", "error", "retry_after"),
    [
        (500, None, TransientSendError, None),
        (503, None, TransientSendError, None),
        (429, None, TransientSendError, 2.0),
        (400, 21610, RecipientOptedOut, None),
        (400, 21211, PermanentSendError, None),
        (404, 20404, PermanentSendError, None),
    ],
)
async def test_api_errors_map_to_retry_or_dead_letter(
    channel: SmsChannel,
    fake: FakeTwilio,
    status: int,
    code: int | None,
    error: type[Exception],
    retry_after: float | None,
) -> None:
    fake.fail_next(status, code=code, retry_after=retry_after)
    with pytest.raises(error) as info:
        await channel.send(TO, OutboundMessage("hi", message_id=1))
    assert type(info.value) is error
    if isinstance(info.value, TransientSendError):
        assert info.value.retry_after == retry_after
    else:
        assert getattr(info.value, "code", None) == code
    assert fake.messages == []


async def test_wrong_credentials_are_permanent(fake: FakeTwilio) -> None:
    ch = make_channel(fake, auth_token="f" * 32)
    try:
        with pytest.raises(PermanentSendError) as info:
            await ch.send(TO, OutboundMessage("hi", message_id=1))
    finally:
        await ch.aclose()
    assert info.value.code == 20003 and fake.outcomes() == ["unauthorised"]


async def test_a_slow_api_times_out_as_transient(fake: FakeTwilio) -> None:
    ch = make_channel(fake, send_timeout=0.3)
    fake.stall_next(1.0)
    try:
        with pytest.raises(TransientSendError) as info:
            await ch.send(TO, OutboundMessage("hi", message_id=1))
    finally:
        await ch.aclose()
    assert info.value.code == "timeout"


async def test_an_unreachable_api_is_transient(fake: FakeTwilio) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ch = make_channel(fake, api_base_url=f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(TransientSendError) as info:
            await ch.send(TO, OutboundMessage("hi", message_id=1))
    finally:
        await ch.aclose()
    assert info.value.code == "connection"


# ---- long replies ---------------------------------------------------------------------------------


async def test_up_to_ten_segments_go_as_one_concatenated_message(
    channel: SmsChannel, fake: FakeTwilio
) -> None:
    text = ("Your order is on its way. " * 58).strip()  # 1507 GSM characters: 10 segments
    assert segment_count(text) == 10
    await channel.send(TO, OutboundMessage(text, message_id=1))
    assert fake.bodies() == [text]


async def test_longer_replies_are_split_and_a_retry_resends_only_the_missing_parts(
    fake: FakeTwilio,
) -> None:
    ch = make_channel(fake, max_segments=1)
    text = REFUND_ANSWER + " " + REFUND_ANSWER.upper()
    parts = list(split_text(text, max_segments=1).parts)
    assert len(parts) >= 3
    fake.accept_next()  # the first part goes through, the second fails
    fake.fail_next(500)
    try:
        with pytest.raises(TransientSendError):
            await ch.send(TO, OutboundMessage(text, message_id=7))
        result = await ch.send(TO, OutboundMessage(text, message_id=7))  # the outbox's retry
    finally:
        await ch.aclose()
    assert fake.bodies() == parts  # each part exactly once, in order
    assert result.platform_id == fake.messages[-1]["sid"]
    assert "https://help.example.test/returns/refund-status" in " ".join(parts).split()


# ---- through the outbox: recovery, order, opt-outs ---------------------------------------------------------


@pytest.fixture
async def rig(
    db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> AsyncIterator[SmsRig]:
    async with sms_rig(db, settings_factory) as r:
        yield r


async def _assigned_conversation(rig: SmsRig) -> int:
    await rig.text("I want a person please")
    await rig.settle()
    (conv,) = await rig.conversations()
    await rig.agents.assign(conv.id, user_id="U1", user_name="Ana")
    await rig.settle()
    return conv.id


async def test_failures_recover_with_each_reply_delivered_once_and_in_order(rig: SmsRig) -> None:
    conv_id = await _assigned_conversation(rig)
    before = len(rig.fake.messages)
    rig.fake.fail_next(500)
    rig.fake.fail_next(429, retry_after=1)
    rig.fake.stall_next(2.0)  # longer than send_timeout (1 s): the client gives up, Twilio never takes it
    rig.fake.fail_next(503)
    replies = [f"Step {i}: please check the label on the box." for i in range(1, 5)]
    for i, text in enumerate(replies):
        await rig.agents.reply(
            conv_id, text=text, author_id="U1", author_name="Ana", source_id=f"slack:C1:2.{i}"
        )
    await rig.settle(within=30)

    async def stalled_request_finished() -> bool:
        return "pending" not in rig.fake.outcomes()

    await rig.wait_for(stalled_request_finished)
    assert rig.fake.bodies()[before:] == replies
    attempts = [r for r in rig.fake.requests if r.form["Body"] in replies]
    # Never a later reply before an earlier one was accepted (arrival order is non-decreasing).
    order = [replies.index(r.form["Body"]) for r in attempts]
    assert order == sorted(order)
    assert {"error 500 20500", "error 429 20429", "abandoned", "error 503 20503"} <= {
        r.outcome for r in attempts
    }
    # Retry-After was honoured: the attempt after the 429 came at least a second later.
    k = next(i for i, r in enumerate(attempts) if r.outcome.startswith("error 429"))
    assert attempts[k + 1].at - attempts[k].at >= 1.0
    out = {m.text: m for m in await rig.messages("out")}
    assert all(out[t].delivery_status == "queued" and out[t].platform_id for t in replies)
    assert {e.status for e in await rig.outbox()} == {OutboxStatus.DELIVERED}


async def test_21610_marks_the_number_opted_out_and_it_receives_nothing_more(rig: SmsRig) -> None:
    rig.fake.opted_out.add(CUSTOMER)  # the customer texted STOP to Twilio directly
    await rig.text("refund?")
    await rig.settle()
    identity = await rig.identity()
    assert identity is not None and identity.opted_out and identity.opted_out_at is not None
    (dead,) = await rig.outbox()
    assert dead.status == OutboxStatus.DEAD
    (reply,) = await rig.messages("out")
    assert (reply.delivery_status, reply.error_code) == ("failed", "21610")
    assert rig.desk.delivery_problems[0]["error_code"] == "21610"  # agents see it

    await rig.text("shipping?")
    (conv,) = await rig.conversations()
    await rig.settle()
    await rig.agents.reply(conv.id, text="Hello from Ana", author_id="U1", source_id="slack:C1:3.0")
    await rig.settle()
    assert [r.outcome for r in rig.fake.requests] == ["error 400 21610"]  # one attempt, ever
    assert rig.fake.messages == []
    later = (await rig.messages("out"))[1:]
    assert later and {m.delivery_status for m in later} == {"suppressed"}
