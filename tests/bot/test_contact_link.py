"""A web chat customer who leaves their phone number is linked to their SMS identity, and the SMS
history shows in the handoff context; bad input gets a clear error and loses nothing."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.handoff_context import build_context
from bot.messages import Address, InboundMessage
from bot.models import Conversation, Customer, Message
from bot.settings import Settings
from bot.web_people_api import web_people_router
from channels.webchat_session import SessionSigner
from handoff.policy import Policy, PolicyConfig
from tests.bot.helpers import TableSearcher, make_core


async def test_phone_from_web_chat_links_the_sms_history(db: async_sessionmaker[AsyncSession],
                                                          settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    core = make_core(db, settings, kb=TableSearcher({}), policy=Policy(PolicyConfig.from_settings(settings)))
    pipeline, agents = core.pipeline, core.agents
    sms_conv = (await pipeline.receive(InboundMessage(Address("sms", "+14155550101"), "SM1",
                                                      "my parcel never came"))).conversation_id
    await pipeline.drain()
    await agents.resolve(sms_conv, by="U1")
    token = SessionSigner(settings.secret_key).issue()
    sid = token.split(".")[1]
    await pipeline.request_human(Address("web", sid))
    async with db() as s:
        web_conv = (await s.execute(select(Conversation).where(Conversation.channel == "web"))).scalar_one()
        sms_customer = (await s.get(Conversation, sms_conv)).customer_id  # type: ignore[union-attr]
        messages_before = (await s.execute(select(func.count(Message.id)))).scalar_one()
    assert web_conv.customer_id != sms_customer  # two strangers so far

    app = FastAPI()
    app.include_router(web_people_router(settings, db))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        bad = await http.post("/api/web/contact", json={"token": token, "phone": "12"})
        assert bad.status_code == 400 and bad.json() == {"error": "'12' is not a phone number"}
        forged = await http.post("/api/web/contact", json={"token": token[:-2] + "xx", "phone": "+14155550101"})
        assert forged.status_code == 401
        junk = await http.post("/api/web/contact", content=b"not json", headers={"content-type": "application/json"})
        assert junk.status_code == 400
        empty = await http.post("/api/web/contact", json={"token": token})
        assert empty.status_code == 400 and "email address or a phone number" in empty.json()["error"]
        ok = await http.post("/api/web/contact", json={"token": token, "phone": "(415) 555-0101"})
        assert ok.status_code == 200 and ok.json() == {"ok": True}

    async with db() as s:
        linked = await s.get(Conversation, web_conv.id)
        assert linked is not None and linked.customer_id == sms_customer
        assert (await s.execute(select(func.count(Message.id)))).scalar_one() == messages_before
        customer = await s.get(Customer, sms_customer)
        assert customer is not None and customer.phone == "+14155550101"
        pkg = await build_context(s, conversation_id=web_conv.id)
    assert pkg.customer.customer_id == sms_customer
    assert [(p.id, p.channel) for p in pkg.customer.previous] == [(sms_conv, "sms")]
    # The agents' context shows the SMS history, and that the web chat joined it on the customer's word.
    from bot.desk.agent_context import customer_history

    async with db() as s:
        history = await customer_history(s, conversation=await s.get(Conversation, web_conv.id))  # type: ignore[arg-type]
    assert history["channels"] == ["sms", "web (linked on the customer's word, unverified)"]
    earlier = [(e["id"], e["outcome"]) for e in history["earlier"]]
    assert earlier == [(sms_conv, "resolved by a person (low_confidence)")]


async def test_phone_first_then_a_text_from_it_joins_the_profile(
    db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory()
    pipeline = make_core(db, settings, kb=TableSearcher({})).pipeline
    token = SessionSigner(settings.secret_key).issue()
    await pipeline.request_human(Address("web", token.split(".")[1]))
    app = FastAPI()
    app.include_router(web_people_router(settings, db))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        assert (await http.post("/api/web/contact", json={"token": token, "phone": "+1 415 555 0177",
                                                          "email": "Dana@Example.com"})).status_code == 200
    sms_conv = (await pipeline.receive(InboundMessage(Address("sms", "+14155550177"), "SM9", "hi"))).conversation_id
    await pipeline.drain()
    async with db() as s:
        convs = list((await s.execute(select(Conversation).order_by(Conversation.id))).scalars())
        customer = await s.get(Customer, convs[0].customer_id)
    assert [c.id for c in convs][-1] == sms_conv and len({c.customer_id for c in convs}) == 1
    assert customer is not None and customer.email == "Dana@example.com"


async def test_thumbs_down_on_a_bot_answer_counts_as_a_miss(db: async_sessionmaker[AsyncSession],
                                                            settings_factory: Callable[..., Settings]) -> None:
    from bot.store import unanswered_questions
    from kb_index.models import KBPhrasing

    settings = settings_factory()
    pipeline = make_core(db, settings, kb=TableSearcher({"refund": ("refunds", 0.9)})).pipeline
    token = SessionSigner(settings.secret_key).issue()
    other = SessionSigner(settings.secret_key).issue()
    await pipeline.receive(InboundMessage(Address("web", token.split(".")[1]), "w1", "how do refunds work?"))
    await pipeline.drain()
    async with db() as s:
        answer = (await s.execute(select(Message).where(Message.author_kind == "bot"))).scalar_one()
        assert await unanswered_questions(session=s) == []
    app = FastAPI()
    app.include_router(web_people_router(settings, db))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        url = "/api/web/feedback"
        thumbs_down = {"token": token, "message_id": answer.id, "helpful": False}
        assert (await http.post(url, json={**thumbs_down, "token": other})).status_code == 404
        assert (await http.post(url, json={**thumbs_down, "message_id": 99999})).status_code == 404
        assert (await http.post(url, json={**thumbs_down, "message_id": "x"})).status_code == 400
        assert (await http.post(url, json=thumbs_down)).json() == {"ok": True}
        async with db() as s:
            assert await unanswered_questions(session=s) == ["how do refunds work?"]
            # ... and a learning signal: a negative phrasing of the article, from the customer.
            learned = [(p.article_id, p.question, p.negative, p.agent_id)
                       for p in (await s.execute(select(KBPhrasing))).scalars()]
            assert learned == [("refunds", "how do refunds work?", True, "customer")]
        again = await http.post(url, json=thumbs_down)
        assert again.status_code == 200  # a second 👎 stores nothing twice
        # Changing one's mind: a later 👍 takes the miss back.
        assert (await http.post(url, json={**thumbs_down, "helpful": True})).status_code == 200
    async with db() as s:
        assert await unanswered_questions(session=s) == []
        rated = await s.get(Message, answer.id)
        assert rated is not None and rated.meta["feedback"] == "up"
        assert list((await s.execute(select(KBPhrasing))).scalars()) == []  # the 👍 took the negative back


async def test_web_people_routes_honour_the_allowed_origins(db: async_sessionmaker[AsyncSession],
                                                            settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(web_allowed_origins="https://shop.example")
    token = SessionSigner(settings.secret_key).issue()
    app = FastAPI()
    app.include_router(web_people_router(settings, db))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        body = json.dumps({"token": token, "email": "ann@example.com"})
        evil = await http.post("/api/web/contact", content=body, headers={"origin": "https://evil.example",
                                                                          "content-type": "text/plain"})
        assert evil.status_code == 403
        shop = await http.post("/api/web/contact", content=body, headers={"origin": "https://shop.example",
                                                                          "content-type": "text/plain"})
        assert shop.status_code == 200 and shop.headers["access-control-allow-origin"] == "https://shop.example"
        bad = await http.post("/api/web/contact", content='{"token": "nope"}', headers={"origin": "https://shop.example"})
        assert bad.status_code == 401 and bad.headers["access-control-allow-origin"] == "https://shop.example"
