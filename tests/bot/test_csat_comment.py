"""Web chat CSAT: the rating (the customer's reply) and then the optional comment
(POST /api/web/csat-comment), with a clear error for every wrong case and nothing lost."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.csat_models import CsatSurvey, SurveyStatus
from bot.messages import Address, InboundMessage, utcnow
from bot.models import Conversation, Event, OutboxEntry
from bot.people_sweep import PeopleSweep
from bot.settings import Settings
from bot.web_people_api import web_people_router
from channels.webchat_session import SessionSigner
from handoff.policy import Policy, PolicyConfig
from tests.bot.helpers import TableSearcher, make_core


async def test_rating_then_comment_and_every_wrong_case(db: async_sessionmaker[AsyncSession],
                                                        settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory(csat_quiet_hours="", slack_bot_token="xoxb-t", slack_signing_secret="s" * 20,
                                slack_supervisors_channel="C0SUPER")
    core = make_core(db, settings, kb=TableSearcher({}), policy=Policy(PolicyConfig.from_settings(settings)))
    pipeline, agents = core.pipeline, core.agents
    sweep = PeopleSweep(settings=settings, sessionmaker=db, agents=agents)
    token = SessionSigner(settings.secret_key).issue()
    sid = token.split(".")[1]
    other = SessionSigner(settings.secret_key).issue()
    app = FastAPI()
    app.include_router(web_people_router(settings, db))

    async def comment(text: Any, tok: str = token) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            return await http.post("/api/web/csat-comment", json={"token": tok, "comment": text})

    n = 0

    async def say(text: str) -> int:
        nonlocal n
        n += 1
        receipt = await pipeline.receive(InboundMessage(Address("web", sid), f"w{n}", text))
        await pipeline.drain()
        return receipt.conversation_id

    conv_id = await say("the weather is wrong")  # nothing in the KB: handed to people
    nothing = await comment("hello?")
    assert nothing.status_code == 404 and nothing.json() == {"error": "there is no survey in this chat to comment on"}
    await agents.reply(conv_id, text="Sorry, fixed it.", author_id="U1", author_name="Ann")
    await agents.resolve(conv_id, by="U1")
    await sweep.run(now=utcnow() + timedelta(minutes=6))
    early = await comment("slow")
    assert early.status_code == 409 and early.json() == {"error": "rate us from 1 to 5 first"}

    assert await say("2") == conv_id  # the widget's "Rate 2 of 5" button sends this
    for bad, status, error in [("   ", 400, "the comment is empty"), ("x" * 1001, 400, "longer than 1000"),
                               (7, 400, "expected comment (text)")]:
        r = await comment(bad)
        assert r.status_code == status and error in r.json()["error"]
    stranger = await comment("not mine", tok=other)
    assert stranger.status_code == 404  # another chat's survey is not theirs to comment on
    forged = await comment("x", tok=token[:-2] + "xx")
    assert forged.status_code == 401

    ok = await comment("it took <b>two</b> days")
    assert ok.status_code == 200 and ok.json() == {"ok": True}
    async with db() as s:
        survey = (await s.execute(select(CsatSurvey).where(CsatSurvey.conversation_id == conv_id))).scalar_one()
        assert (survey.status, survey.score, survey.comment) == (SurveyStatus.ANSWERED, 2, "it took <b>two</b> days")
        assert (await s.get(Conversation, conv_id)).state == "resolved"  # type: ignore[union-attr]
        notices = [e.payload["text"] for e in (await s.execute(select(OutboxEntry).where(
            OutboxEntry.kind == "slack.notice").order_by(OutboxEntry.id))).scalars()]
        assert notices == [f"CSAT 2/5 on conversation #{conv_id}",
                           f"CSAT 2/5 on conversation #{conv_id}, comment: \u201cit took <b>two</b> days\u201d"]
        assert (await s.execute(select(Event).where(Event.kind == "csat_commented"))).scalar_one()

    # After the survey's window the comment box is closed, with a clear error; the survey keeps its answer.
    async with db() as s, s.begin():
        await s.execute(update(CsatSurvey).values(expires_at=utcnow() - timedelta(minutes=1)))
    late = await comment("one more thing")
    assert late.status_code == 410 and "closed" in late.json()["error"]
    async with db() as s:
        survey = (await s.execute(select(CsatSurvey).where(CsatSurvey.conversation_id == conv_id))).scalar_one()
        assert survey.comment == "it took <b>two</b> days"
