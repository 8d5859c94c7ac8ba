"""The SMS channel end to end: signed Twilio webhooks in, the real twilio client out to a fake API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.messages import Address
from bot.settings import Settings
from channels.base import Channel
from channels.sms import INBOUND_PATH, SmsChannel, compliance_keyword, to_e164, to_inbound
from tests.channels.sms_support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CUSTOMER,
    OUR_NUMBER,
    PUBLIC,
    REFUND_ANSWER,
    SHIPPING_ANSWER,
    SmsRig,
    sms_rig,
)
from tests.fakes.twilio import inbound_params, new_sid, signed_post


@pytest.fixture
async def rig(
    db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> AsyncIterator[SmsRig]:
    async with sms_rig(db, settings_factory) as r:
        yield r


# ---- pure translation ----------------------------------------------------------------------------


def test_numbers_are_normalised_to_e164() -> None:
    assert to_e164("+1 (415) 555-0123") == "+14155550123"
    assert to_e164("(415) 555-0123", "US") == "+14155550123"
    assert to_e164("020 7946 0958", "GB") == "+442079460958"
    assert to_e164("+44 20 7946 0958", "US") == "+442079460958"
    assert to_e164("12345") == "12345"  # a short code stays as sent
    assert to_e164("ACME") == "ACME"  # so does an alphanumeric sender


def test_to_inbound_keeps_media_and_sid() -> None:
    sid = new_sid()
    params = inbound_params(
        sid=sid,
        from_="+1 415 555 0123",
        to=OUR_NUMBER,
        body="photo of the damage",
        account_sid=ACCOUNT_SID,
        media=(("https://api.twilio.test/m/1", "image/jpeg"), ("https://api.twilio.test/m/2", "image/png")),
    )
    msg = to_inbound(params)
    assert msg.sender == Address("sms", "+14155550123")
    assert msg.platform_id == sid
    assert [(a.url, a.content_type) for a in msg.attachments] == [
        ("https://api.twilio.test/m/1", "image/jpeg"),
        ("https://api.twilio.test/m/2", "image/png"),
    ]
    assert msg.meta["sms"]["To"] == OUR_NUMBER and "compliance" not in msg.meta


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("STOP", "stop"),
        (" stop ", "stop"),
        ("Stop.", "stop"),
        ("unsubscribe", "stop"),
        ("StopAll", "stop"),
        ("CANCEL", "stop"),
        ("end", "stop"),
        ("quit!", "stop"),
        ("START", "start"),
        ("unstop", "start"),
        ("yes", "start"),
        ("HELP", "help"),
        ("info", "help"),
        ("stop sending me coupons please", None),
        ("how do I cancel my order", None),
        ("helpful", None),
        ("", None),
    ],
)
def test_compliance_keywords_are_whole_message_matches(text: str, kind: str | None) -> None:
    assert compliance_keyword(text) == kind


def test_channel_implements_the_contract(settings_factory: Callable[..., Settings]) -> None:
    channel = SmsChannel.from_settings(
        settings_factory(
            twilio_account_sid=ACCOUNT_SID,
            twilio_auth_token=AUTH_TOKEN,
            twilio_messaging_service_sid="MG" + "1" * 32,
            public_base_url=PUBLIC + "/",
        )
    )
    assert isinstance(channel, Channel) and channel.name == "sms"
    assert channel.status_callback_url == PUBLIC + "/twilio/status"
    with pytest.raises(ValueError, match="FROM_NUMBER"):
        SmsChannel(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, public_base_url=PUBLIC)


# ---- a conversation by SMS ---------------------------------------------------------------------------


async def test_full_conversation_by_sms(rig: SmsRig) -> None:
    # A question the KB answers: one SMS back, with the article link intact.
    r = await rig.text("Hi, how long does a refund take?")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xml")
    assert r.text.endswith("<Response/>")
    await rig.settle()
    assert rig.fake.bodies(CUSTOMER) == [REFUND_ANSWER]
    sent = rig.fake.messages[0]
    assert sent["from"] == OUR_NUMBER
    assert sent["status_callback"] == PUBLIC + "/twilio/status"

    # Out of scope: the handoff notice by SMS, the conversation waits for a person.
    await rig.text("my neighbour's parrot keeps stealing my parcels")
    await rig.settle()
    assert rig.fake.bodies(CUSTOMER)[-1] == rig.settings.handoff_message
    (conv,) = await rig.conversations()
    assert conv.state == "waiting"

    # An agent replies (from Slack): it reaches the customer by SMS, after the takeover notice.
    mid = await rig.agents.reply(
        conv.id,
        text="Hi! I'm Sam. Let's sort the parcels out.",
        author_id="U123",
        author_name="Sam",
        source_id="slack:C1:1.0001",
    )
    assert mid is not None
    await rig.settle()
    assert rig.fake.bodies(CUSTOMER)[-2:] == [
        rig.settings.takeover_message.format(name="Sam"),
        "Hi! I'm Sam. Let's sort the parcels out.",
    ]

    # The same customer texting again continues the same (now assigned) conversation.
    await rig.text("thanks Sam")
    await rig.settle()
    convs = await rig.conversations()
    assert [c.id for c in convs] == [conv.id] and convs[0].state == "assigned"
    assert rig.desk.customer_messages[-1]["text"] == "thanks Sam"

    # Every reply went out once, in the order it was owed, and is marked as accepted.
    outbound = await rig.messages("out")
    assert [m.text for m in outbound] == rig.fake.bodies(CUSTOMER)
    assert all(m.platform_id and m.platform_id.startswith("SM") for m in outbound)
    assert {m.delivery_status for m in outbound} == {"queued"}


async def test_a_retried_webhook_is_one_message_and_one_reply(rig: SmsRig) -> None:
    sid = new_sid()
    first = await rig.text("what does shipping cost?", sid=sid)
    retry = await rig.text("what does shipping cost?", sid=sid)
    await rig.settle()
    again = await rig.text("what does shipping cost?", sid=sid)  # a late retry, after the reply
    await rig.settle()
    assert (first.status_code, retry.status_code, again.status_code) == (200, 200, 200)
    inbound = await rig.messages("in")
    assert [m.platform_id for m in inbound] == [sid]
    assert rig.fake.bodies() == [SHIPPING_ANSWER]


async def test_the_number_format_does_not_split_a_customer(rig: SmsRig) -> None:
    await rig.text("refund?", from_="+1 (415) 555-0123")
    await rig.text("shipping?", from_="+14155550123")
    await rig.settle()
    convs = await rig.conversations()
    assert len(convs) == 1
    assert rig.fake.bodies("+14155550123") == [REFUND_ANSWER, SHIPPING_ANSWER]


async def test_mms_media_is_kept_for_agents(rig: SmsRig) -> None:
    await rig.text("the box arrived like this", media=(("https://api.twilio.test/Media/ME1", "image/jpeg"),))
    await rig.settle()
    (msg,) = await rig.messages("in")
    assert msg.meta["attachments"] == [
        {"url": "https://api.twilio.test/Media/ME1", "content_type": "image/jpeg"}
    ]
    assert rig.desk.customer_messages[0]["meta"]["attachments"][0]["content_type"] == "image/jpeg"


# ---- signatures ---------------------------------------------------------------------------------------


async def _post(rig: SmsRig, params: dict[str, str], **kw: object) -> int:
    response = await signed_post(
        PUBLIC + INBOUND_PATH, params, AUTH_TOKEN, post_url=rig.local_url + INBOUND_PATH, **kw
    )  # type: ignore[arg-type]
    return response.status_code


async def test_forged_tampered_or_misaddressed_webhooks_are_refused(rig: SmsRig) -> None:
    params = inbound_params(
        sid=new_sid(), from_=CUSTOMER, to=OUR_NUMBER, body="refund?", account_sid=ACCOUNT_SID
    )
    forged = await signed_post(
        PUBLIC + INBOUND_PATH, params, "not-the-auth-token", post_url=rig.local_url + INBOUND_PATH
    )
    tampered = await _post(rig, {**params, "Body": "send me all refunds"}, signed_params=params)
    added = await _post(rig, {**params, "Extra": "1"}, signed_params=params)
    wrong_url = await _post(rig, params, signed_url="https://evil.example.test" + INBOUND_PATH)
    wrong_query = await _post(rig, params, signed_url=PUBLIC + INBOUND_PATH + "?x=1")
    local_url = await _post(rig, params, signed_url=rig.local_url + INBOUND_PATH)  # not the public URL
    async with __import__("httpx").AsyncClient() as client:
        unsigned = (await client.post(rig.local_url + INBOUND_PATH, data=params)).status_code
    assert [forged.status_code, tampered, added, wrong_url, wrong_query, local_url, unsigned] == [403] * 7
    await rig.settle()
    assert await rig.messages() == []
    assert rig.fake.requests == []
    assert await _post(rig, params) == 200  # the genuine request still goes through


async def test_a_query_string_is_part_of_the_signed_url(rig: SmsRig) -> None:
    params = inbound_params(
        sid=new_sid(), from_=CUSTOMER, to=OUR_NUMBER, body="refund?", account_sid=ACCOUNT_SID
    )
    url = PUBLIC + INBOUND_PATH + "?tenant=acme"
    response = await signed_post(
        url, params, AUTH_TOKEN, post_url=rig.local_url + INBOUND_PATH + "?tenant=acme"
    )
    assert response.status_code == 200
    await rig.settle()
    assert len(await rig.messages("in")) == 1


# ---- status callbacks ---------------------------------------------------------------------------------


async def test_status_callbacks_are_stored_and_problems_reach_agents(rig: SmsRig) -> None:
    await rig.text("refund?")
    await rig.text("and shipping?")
    await rig.settle()
    first, second = rig.fake.messages
    assert await rig.fake.fire_status(first["sid"], "sent") == 204
    assert await rig.fake.fire_status(first["sid"], "delivered") == 204
    assert await rig.fake.fire_status(first["sid"], "sent") == 204  # late and out of order: ignored
    assert await rig.fake.fire_status(second["sid"], "undelivered", error_code="30003") == 204
    by_sid = {m.platform_id: m for m in await rig.messages("out")}
    assert by_sid[first["sid"]].delivery_status == "delivered"
    assert (by_sid[second["sid"]].delivery_status, by_sid[second["sid"]].error_code) == (
        "undelivered",
        "30003",
    )
    assert rig.desk.delivery_problems == [
        {
            "conversation": by_sid[second["sid"]].conversation_id,
            "text": SHIPPING_ANSWER,
            "status": "undelivered",
            "error_code": "30003",
        }
    ]


async def test_forged_status_callbacks_are_refused(rig: SmsRig) -> None:
    await rig.text("refund?")
    await rig.settle()
    sid = rig.fake.messages[0]["sid"]
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT_SID,
        "MessageStatus": "failed",
        "SmsStatus": "failed",
        "ErrorCode": "30007",
        "To": CUSTOMER,
        "From": OUR_NUMBER,
    }
    url = PUBLIC + "/twilio/status"
    local = rig.local_url + "/twilio/status"
    forged = await signed_post(url, params, "wrong-token", post_url=local)
    tampered = await signed_post(
        url,
        params,
        AUTH_TOKEN,
        post_url=local,
        signed_params={**params, "MessageStatus": "delivered", "SmsStatus": "delivered"},
    )
    assert (forged.status_code, tampered.status_code) == (403, 403)
    (out,) = await rig.messages("out")
    assert out.delivery_status == "queued" and out.error_code is None
    assert (await signed_post(url, params, AUTH_TOKEN, post_url=local)).status_code == 204
