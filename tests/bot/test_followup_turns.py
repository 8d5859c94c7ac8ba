"""Conversations on web chat and SMS: a follow-up answered with the earlier turn and the bot's last
article; a clarifying question (buttons on the web, numbered options by SMS) and the reply."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import policy_config
from bot.messages import Address, InboundMessage
from bot.models import Event, Message
from bot.settings import Settings
from bot.worker import ChannelDeliverer, Worker
from handoff.policy import Policy
from kb_index.types import Hit
from tests.bot.helpers import ScriptedChannel, make_core, texts


def hit(art: str, conf: float) -> Hit:
    return Hit(article_id=art, title=art.replace("-", " ").title(), snippet="", answer=f"Answer about {art}.",
               score=conf, confidence=conf)


class ConversationSearcher:
    """Answers "return" alone; "how long" only as a follow-up of the returns article; "promo"
    with two close articles (a clarifying question)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...], str | None]] = []

    async def search(
        self, query: str, *, history: Sequence[str] = (), last_article: str | None = None, k: int = 3
    ) -> list[Hit]:
        self.calls.append((query, tuple(history), last_article))
        q = query.lower()
        if "return" in q:
            return [hit("returns-policy", 0.9)]
        if "how long" in q and last_article == "returns-policy":
            return [replace(hit("returns-time-limit", 0.8), context=history[-1]), hit("refunds-timing", 0.1)]
        if "promo" in q:
            return [hit("billing-promo-codes", 0.55), hit("billing-gift-cards", 0.4)]
        return [hit("misc", 0.05)]


class Rig:
    def __init__(self, sm: async_sessionmaker[AsyncSession], settings: Settings, channel: str) -> None:
        self.sm = sm
        self.name = channel
        self.channel = ScriptedChannel()
        self.kb = ConversationSearcher()
        self.worker = Worker(sessionmaker=sm, settings=settings,
                             deliverers={channel: ChannelDeliverer(self.channel)})
        self.pipeline = make_core(sm, settings, kb=self.kb, policy=Policy(policy_config(settings)),
                                  wake=self.worker.wake).pipeline
        self.n = 0

    async def say(self, text: str) -> None:
        self.n += 1
        who = "+15550100" if self.name == "sms" else "s1"
        await self.pipeline.receive(InboundMessage(sender=Address(self.name, who), platform_id=f"m{self.n}",
                                                   text=text))
        await self.pipeline.drain()
        while await self.worker.run_once():
            pass

    async def events(self) -> list[str]:
        async with self.sm() as s:
            return list((await s.execute(select(Event.kind).order_by(Event.id))).scalars())


@pytest.fixture(params=["web", "sms"])
def rig(
    request: pytest.FixtureRequest, any_db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> Rig:
    return Rig(any_db, settings_factory(answer_threshold=0.6), request.param)


async def test_follow_up_is_answered_with_the_earlier_turn_and_the_last_article(rig: Rig) -> None:
    await rig.say("I want to return the lamp I bought")
    await rig.say("how long do I have?")
    assert texts(rig.channel) == ["Answer about returns-policy.", "Answer about returns-time-limit."]
    assert rig.kb.calls[-1] == ("how long do I have?", ("I want to return the lamp I bought",), "returns-policy")


async def test_clarifying_question_and_the_reply_that_picks_the_answer(rig: Rig) -> None:
    await rig.say("a question about a promo")
    (_, question), = rig.channel.sent
    assert "Billing Promo Codes" in question.text and "Billing Gift Cards" in question.text
    assert [o["value"] for o in question.meta["options"]] == ["1", "2"]
    if rig.name == "sms":  # no buttons: numbered options in the text
        assert "1. Billing Promo Codes\n2. Billing Gift Cards" in question.text
    await rig.say("2" if rig.name == "sms" else "Billing Gift Cards")  # a web button sends its label
    assert texts(rig.channel)[-1] == "Answer about billing-gift-cards."
    assert len(rig.kb.calls) == 1  # the reply picked an offered answer: no second search
    assert [e for e in await rig.events() if e.startswith("bot_")] == ["bot_clarified", "bot_answered"]


async def test_a_reply_that_picks_neither_option_is_searched_as_a_new_message(rig: Rig) -> None:
    await rig.say("a question about a promo")
    await rig.say("actually I want to return it")
    assert texts(rig.channel)[-1] == "Answer about returns-policy."
    assert rig.kb.calls[-1][1] == ("a question about a promo",)


async def test_the_message_records_the_earlier_turn_it_was_read_with(rig: Rig) -> None:
    await rig.say("I want to return the lamp I bought")
    await rig.say("how long do I have?")
    async with rig.sm() as s:
        metas = [m for m in (await s.execute(select(Message.meta).where(Message.direction == "in")
                                             .order_by(Message.id))).scalars()]
    assert metas[0]["kb"]["query"] == "I want to return the lamp I bought" and "context_turn" not in metas[0]["kb"]
    assert metas[1]["kb"]["context_turn"] == "I want to return the lamp I bought"
    assert metas[1]["kb"]["query"] == "I want to return the lamp I bought how long do I have?"
