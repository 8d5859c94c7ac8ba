"""Inputs that used to lose messages or were accepted unchecked (issue 13, item 5), on SQLite and
PostgreSQL: whatever passed the signature check is stored (made storable and flagged), a bad
webhook gets a clear 4xx, the body is capped before it is parsed, status callbacks only move forward."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery_status import advances
from bot.settings import Settings
from channels.sms import INBOUND_PATH, STATUS_PATH
from channels.sms_params import MAX_BODY, MAX_ID, clean, shorten
from tests.channels.sms_support import ACCOUNT_SID, AUTH_TOKEN, CUSTOMER, OUR_NUMBER, PUBLIC, SmsRig, sms_rig
from tests.fakes.twilio import inbound_params, new_sid, signed_post


@pytest.fixture
async def rig(any_db: async_sessionmaker[AsyncSession],
              settings_factory: Callable[..., Settings]) -> AsyncIterator[SmsRig]:
    async with sms_rig(any_db, settings_factory) as r:
        yield r


def _params(**over: str) -> dict[str, str]:
    params = inbound_params(sid=new_sid(), from_=CUSTOMER, to=OUR_NUMBER, body="hello", account_sid=ACCOUNT_SID)
    params.update(over)
    return params


async def test_a_nul_in_body_from_or_sid_is_stored_once_and_flagged(rig: SmsRig) -> None:
    sid = new_sid() + "\x00x"
    params = _params(MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, Body="my order\x00 is late",
                     From=CUSTOMER + "\x00")
    for _ in range(2):  # Twilio's retry is the same message
        resp = await rig.post_inbound(params)
        assert resp.status_code == 200, resp.text
    await rig.settle()
    [msg] = await rig.messages("in")
    assert msg.text == "my order is late" and msg.platform_id == sid.replace("\x00", "")
    sms = msg.meta["sms"]
    assert "Body: NUL removed" in sms["normalised"] and "From: NUL removed" in sms["normalised"]
    assert json.loads(sms["raw"]["Body"]) == "my order\x00 is late"  # the original, kept JSON-escaped
    assert await rig.identity(CUSTOMER) is not None


async def test_over_long_from_and_sid_are_cut_with_a_hash_and_stored_once(rig: SmsRig) -> None:
    long_sid, long_from = "SM" + "a" * 400, "+1" + "5" * 600
    params = _params(MessageSid=long_sid, SmsSid=long_sid, SmsMessageSid=long_sid, From=long_from)
    for _ in range(2):
        assert (await rig.post_inbound(params)).status_code == 200
    # A second, different long sender is a different customer (the hash keeps them apart).
    other = _params(From="+1" + "5" * 599 + "6")
    assert (await rig.post_inbound(other)).status_code == 200
    await rig.settle()
    first, second = await rig.messages("in")
    assert first.platform_id == shorten(long_sid) and len(first.platform_id) == MAX_ID
    assert first.platform_id.startswith("SMaaa") and "...#" in first.platform_id
    assert any("From: 602 characters cut to 255" == n for n in first.meta["sms"]["normalised"])
    assert len(await rig.conversations()) == 2
    assert json.loads(first.meta["sms"]["raw"]["From"]) == long_from


@pytest.mark.parametrize(("change", "status", "detail"), [
    ({"From": " "}, 400, "From"),
    ({"From": ""}, 400, "From"),
    ({"AccountSid": "AC" + "9" * 32}, 403, "not this account"),
])
async def test_blank_sender_or_foreign_account_is_a_clear_4xx(rig: SmsRig, change: dict[str, str], status: int,
                                                              detail: str) -> None:
    resp = await rig.post_inbound(_params(**change))
    assert resp.status_code == status and detail in resp.text
    assert await rig.messages() == []


@pytest.mark.parametrize("missing", ["Body", "To", "AccountSid", "MessageSid"])
async def test_missing_fields_are_a_400_naming_them(rig: SmsRig, missing: str) -> None:
    params = _params()
    del params[missing]
    resp = await rig.post_inbound(params)
    assert resp.status_code == 400 and missing in resp.text
    assert await rig.messages() == []


async def test_an_empty_body_mms_is_still_accepted(rig: SmsRig) -> None:
    params = _params(Body="", NumMedia="1", MediaUrl0="https://api.twilio.com/x.jpg", MediaContentType0="image/jpeg")
    assert (await rig.post_inbound(params)).status_code == 200
    await rig.settle()
    assert len(await rig.messages("in")) == 1


async def test_a_huge_form_is_refused_before_it_is_read(rig: SmsRig) -> None:
    url = rig.local_url + INBOUND_PATH
    huge = b"Body=" + b"a" * (MAX_BODY + 1)
    async with httpx.AsyncClient(timeout=10) as client:
        unsigned = await client.post(url, content=huge,
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert unsigned.status_code == 403  # no signature header: nothing is read at all
        forged = await client.post(url, content=huge, headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "abc"})
        assert forged.status_code == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(20):
                yield b"a" * 8192

        streamed = await client.post(url, content=chunks(), headers={
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "abc"})
        assert streamed.status_code == 413
    assert await rig.messages() == []


async def test_status_callbacks_only_move_forward_and_warn_once(rig: SmsRig) -> None:
    assert (await rig.text("refund please")).status_code == 200
    await rig.settle()
    [accepted] = rig.fake.messages
    sid = accepted["sid"]
    for status in ("sent", "failed", "delivered", "failed", "undelivered", "sent", "queued"):
        assert await rig.fake.fire_status(sid, status, error_code="30003" if "failed" == status else None) == 204
    [out] = [m for m in await rig.messages("out") if m.platform_id == sid]
    assert (out.delivery_status, out.error_code) == ("failed", "30003")
    assert len(rig.desk.delivery_problems) == 1  # one warning to agents, not one per callback


async def test_status_callbacks_are_checked_like_inbound(rig: SmsRig) -> None:
    url = PUBLIC + STATUS_PATH
    post = rig.local_url + STATUS_PATH
    base = {"MessageSid": new_sid(), "AccountSid": ACCOUNT_SID, "MessageStatus": "delivered"}
    foreign = await signed_post(url, {**base, "AccountSid": "AC" + "1" * 32}, AUTH_TOKEN, post_url=post)
    assert foreign.status_code == 403
    missing = await signed_post(url, {k: v for k, v in base.items() if k != "MessageStatus"}, AUTH_TOKEN,
                                post_url=post)
    assert missing.status_code == 400
    odd = {**base, "MessageStatus": "x" * 300, "ErrorCode": "9" * 80, "MessageSid": "SM\x00" + "b" * 400}
    assert (await signed_post(url, odd, AUTH_TOKEN, post_url=post)).status_code == 204  # ignored, not a 500
    await asyncio.sleep(0)


def test_clean_and_advances_are_pure() -> None:
    cleaned = clean({"Body": "a\x00b", "From\x00": "+1"})
    assert cleaned.params == {"Body": "ab", "From": "+1"}
    assert cleaned.raw["Body"] == '"a\\u0000b"'
    assert shorten("x" * 300) != shorten("x" * 299 + "y") and len(shorten("x" * 300)) == MAX_ID
    assert advances(None, "sent") and advances("sent", "delivered") and advances("delivered", "read")
    assert not advances("failed", "delivered") and not advances("delivered", "sent")
    assert not advances("failed", "failed") and not advances("sent", "bogus")
