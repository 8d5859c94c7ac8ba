"""The planted-PII test (issue 12): one customer writes every kind of personal data on web chat and SMS;
agents answer, note and send suggestions in Slack. Then every request body the fake Slack and Twilio
received, every log line captured at DEBUG, every column of every table, the KB's learned phrasings and
the `kb gaps` output are scanned: no card number anywhere, and no other planted value where the policy
masks it (and where it keeps one, only encrypted)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI

from bot import store as bot_store
from bot.log_redact import install as install_log_filters
from bot.pii_vault import Vault
from bot.worker import ChannelDeliverer
from channels import slack_blocks as kit
from channels.sms import INBOUND_PATH, SmsChannel
from kb_index.gaps import gaps
from tests.bot.desk.slack_rig import Rig
from tests.bot.privacy_scan import every_cell, found
from tests.fakes.twilio import FakeTwilio, inbound_params, new_sid, running_fake, sign
from tests.kb_index.fakes import HashEmbedder

ACCOUNT_SID, AUTH_TOKEN = "AC" + "7" * 32, "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
OUR_NUMBER, SMS_CUSTOMER = "+15550001111", "+14155550123"
PUBLIC = "http://testserver"

WEB_1 = ("My card number is 4111 1111 1111 1111, exp 11/29 cvv 4829, why was I charged twice? "
         "my parcel never came")
WEB_2 = ("my IBAN is DE89 3704 0044 0532 0130 00, SSN 078-05-1120, write to planted.person@example.org "
         "or call +44 7400 123456. my password is Tr0ub4dor&3x and the code is 482913")
SMS_1 = "parcel again: card 3782 822463 10005 exp 04/28, iban DE89370400440532013000, mail planted.person@example.org"
AGENT_REPLY = "Thanks, I see 5555-5555-5555-4444 and 4111 1111 1111 1111 on file; your parcel is on its way"
AGENT_NOTE = "customer's SSN 078-05-1120, pin is 9911, card 4111111111111111"
SMS_REPLY = "Card 3782 822463 10005 is blocked now; the parcel ships today"

CARDS = ["4111111111111111", "5555555555554444", "378282246310005"]
OTHERS = {
    "cvv": ["cvv 4829"], "expiry": ["11/29", "04/28"], "iban": ["DE89370400440532013000"],
    "ssn": ["078-05-1120", "078051120"], "email": ["planted.person@example.org"],
    "phone": ["+447400123456", "7400123456"], "secret": ["Tr0ub4dor&3x", "482913", "pin is 9911"],
}


def _flat(text: str) -> str:
    return re.sub(r"[ \-\u00a0]", "", text)


def leaks(needles: list[str], haystack: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Needles found as written or with spaces and dashes removed on both sides."""
    flat_needles = [_flat(n) for n in needles]
    return found(needles, haystack) + found(flat_needles, [(w, _flat(t)) for w, t in haystack])


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    async with running_fake(ACCOUNT_SID, AUTH_TOKEN) as fake:
        yield fake


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
@pytest.mark.parametrize("policy", ["", "email=keep,phone=keep,iban=keep"])
async def test_planted_pii_goes_nowhere(rig_factory: Any, twilio: FakeTwilio, policy: str,  # noqa: F811
                                        database: str, request: pytest.FixtureRequest,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    db_url = request.getfixturevalue("pg_url") if database == "postgres" else None
    install_log_filters()  # as bot.app does
    keys = {"pii_policy": policy, "pii_keys": Fernet.generate_key().decode()} if policy else {}
    rig: Rig = await rig_factory(
        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN, twilio_from_number=OUR_NUMBER,
        twilio_api_base_url=twilio.url, public_base_url=PUBLIC, db_url=db_url, **keys)
    sms = SmsChannel.from_settings(rig.settings)
    rig.worker.deliverers["sms"] = ChannelDeliverer(sms)
    sms_app = FastAPI()
    sms_app.include_router(sms.router(rig.pipeline))

    # Web chat: the card, then everything else; the agents see it in Slack and act on it.
    web_conv = await rig.customer(WEB_1, who="sess-planted")
    [sugg, *_] = await rig.suggestions(web_conv)
    await rig.click(kit.A_SEND, str(sugg.id), conv_id=web_conv)  # learns a phrasing from the customer's words
    await rig.customer(WEB_2, who="sess-planted")
    await rig.reply(AGENT_REPLY, conv_id=web_conv)
    await rig.click(kit.A_NOTE, str(web_conv), conv_id=web_conv)
    note_view = [v for v in rig.fake.views if v["method"] == "views.open"][-1]["view"]
    await rig.submit(note_view, AGENT_NOTE)

    # SMS: Twilio's signed webhook; the agent answers in the SMS conversation's thread.
    params = inbound_params(sid=new_sid(), from_=SMS_CUSTOMER, to=OUR_NUMBER, body=SMS_1, account_sid=ACCOUNT_SID)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=sms_app), base_url=PUBLIC) as client:
        resp = await client.post(INBOUND_PATH, data=params,
                                 headers={"X-Twilio-Signature": sign(PUBLIC + INBOUND_PATH, params, AUTH_TOKEN)})
    assert resp.status_code == 200
    await rig.settle()
    sms_conv = max(c for c in [web_conv, *(await _conversation_ids(rig))])
    assert sms_conv != web_conv
    await rig.reply(SMS_REPLY, conv_id=sms_conv)
    await rig.settle()
    await sms.aclose()

    # What was said reached everyone it should, masked.
    twilio_bodies = [r.form.get("Body", "") for r in twilio.requests]
    masked_card = "\u2022\u2022\u2022\u2022 \u2022\u2022\u2022\u2022 \u2022\u2022\u2022\u2022 0005"
    assert any(masked_card in b for b in twilio_bodies)
    assert any("4444" in t and "parcel is on its way" in t for t in [m.text for _, m in rig.web.sent])
    posted = json.dumps([c.params for c in rig.fake.calls])
    assert "j***" not in posted and "p***@example.org" in posted  # the email, masked, in Slack

    questions = await _unanswered(rig)
    gap_text = json.dumps([asdict(g) for g in gaps(questions, embedder=HashEmbedder())], ensure_ascii=False)
    haystack = (
        [(f"slack {c.method}", json.dumps(c.params, ensure_ascii=False)) for c in rig.fake.calls]
        + [("twilio", json.dumps(r.form, ensure_ascii=False)) for r in twilio.requests]
        + [(f"log {r.name}", r.getMessage() + (r.exc_text or "")) for r in caplog.records]
        + [(f"db {t}.{c}", v) for t, c, v in await every_cell(rig.sm)]
        + [("learned", json.dumps(rig.learned, ensure_ascii=False)), ("kb gaps", gap_text)]
    )
    assert len(caplog.records) > 100 and questions  # the scan saw real traffic
    assert len(leaks(CARDS, [("planted", WEB_1 + AGENT_NOTE + SMS_1)])) >= 3  # and would see a leak
    cells = await every_cell(rig.sm)
    sealed = [v for t, c, v in cells if (t, c) == ("messages", "sealed_text")]
    if policy:  # kept kinds are in the database, but only encrypted
        opened = [Vault.from_keys(keys["pii_keys"]).open(v) for v in sealed]
        assert any("planted.person@example.org" in o for o in opened)
        assert any("DE89 3704 0044 0532 0130 00" in o for o in opened)
        assert not leaks(CARDS + OTHERS["cvv"] + OTHERS["ssn"] + OTHERS["secret"], [("sealed", o) for o in opened])
    else:
        assert sealed == []
    assert leaks(CARDS, haystack) == []
    assert leaks([n for values in OTHERS.values() for n in values], haystack) == []


async def _conversation_ids(rig: Rig) -> list[int]:
    from sqlalchemy import select

    from bot.models import Conversation

    async with rig.sm() as s:
        return list((await s.execute(select(Conversation.id))).scalars())


async def _unanswered(rig: Rig) -> list[str]:
    async with rig.sm() as s:
        return await bot_store.unanswered_questions(session=s)
