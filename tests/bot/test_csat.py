"""CSAT through the real pipeline and worker: one survey per conversation, on the customer's own
channel, never to an opted-out number, never in quiet hours; "5 thanks!" is stored as 5 and does
not reopen; a reply that is not a rating (or comes too late) is an ordinary message."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.csat_models import CsatSurvey, SurveyStatus
from bot.messages import Address, InboundMessage, utcnow
from bot.models import Conversation, Event, Message, OutboxEntry
from bot.models import ConversationState as S
from bot.people_sweep import PeopleSweep
from bot.settings import Settings
from bot.worker import ChannelDeliverer, Worker
from handoff.policy import Policy, PolicyConfig
from tests.bot.helpers import ScriptedChannel, TableSearcher, make_core, texts

QUESTION = "How did we do? Reply with a number from 1 (poor) to 5 (great)."


class SmsChannel(ScriptedChannel):
    name: ClassVar[str] = "sms"


class Rig:
    def __init__(self, sm: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sm, self.settings = sm, settings
        self.sms = SmsChannel()
        self.worker = Worker(sessionmaker=sm, settings=settings, deliverers={"sms": ChannelDeliverer(self.sms)})
        core = make_core(sm, settings, kb=TableSearcher({"refund": ("refunds", 0.9)}),
                         policy=Policy(PolicyConfig.from_settings(settings)), wake=self.worker.wake)
        self.pipeline, self.agents = core.pipeline, core.agents
        self.sweep = PeopleSweep(settings=settings, sessionmaker=sm, agents=self.agents)
        self._n = 0

    async def text(self, body: str, who: str = "+15550001") -> int:
        self._n += 1
        receipt = await self.pipeline.receive(InboundMessage(Address("sms", who), f"SM{self._n}", body))
        await self.settle()
        return receipt.conversation_id

    async def settle(self) -> None:
        await self.pipeline.drain()
        while await self.worker.run_once():
            pass

    async def handled_by_a_person(self, who: str = "+15550001") -> int:
        conv_id = await self.text("the weather is wrong", who=who)  # low confidence: handed off
        await self.agents.reply(conv_id, text="Sorry, fixed it.", author_id="U1", author_name="Ann")
        await self.agents.resolve(conv_id, by="U1")
        await self.settle()
        return conv_id

    async def sweep_at(self, now: datetime) -> dict[str, Any]:
        out = await self.sweep.run(now=now)
        await self.settle()
        return out

    async def surveys(self) -> list[CsatSurvey]:
        async with self.sm() as s:
            return list((await s.execute(select(CsatSurvey).order_by(CsatSurvey.id))).scalars())

    async def conv(self, cid: int) -> Conversation:
        async with self.sm() as s:
            conv = await s.get(Conversation, cid)
            assert conv is not None
            return conv


@pytest.fixture
def rig_factory(any_db: async_sessionmaker[AsyncSession],
                settings_factory: Callable[..., Settings]) -> Callable[..., Rig]:
    db = any_db
    def make(**overrides: Any) -> Rig:
        values: dict[str, Any] = {"csat_quiet_hours": "", "bot_idle_close_hours": 0, "sla_repage_minutes": 0}
        values.update(overrides)
        return Rig(db, settings_factory(**values))

    return make


async def test_sms_survey_answer_five_thanks_is_stored_as_five(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    conv_id = await rig.handled_by_a_person()
    assert (await rig.sweep_at(utcnow()))["surveys_owed"] == 1
    assert QUESTION not in texts(rig.sms)  # owed, but the 5-minute delay has not passed
    out = await rig.sweep_at(utcnow() + timedelta(minutes=6))
    assert len(out["surveys_sent"]) == 1
    assert texts(rig.sms)[-1] == QUESTION and rig.sms.sent[-1][0] == Address("sms", "+15550001")
    assert await rig.text("5 thanks!") == conv_id
    [survey] = await rig.surveys()
    assert (survey.status, survey.score, survey.comment) == (SurveyStatus.ANSWERED, 5, "thanks!")
    conv = await rig.conv(conv_id)
    assert conv.state == S.RESOLVED  # a rating does not reopen the conversation
    assert texts(rig.sms)[-1] == "Thank you for your feedback!"
    async with rig.sm() as s:
        reply = await s.get(Message, survey.reply_message_id)
        assert reply is not None and reply.text == "5 thanks!" and reply.conversation_id == conv_id
        assert reply.processed_at is not None  # no bot turn ran on it
    # One survey per conversation: sweeping again owes nothing, a second "4" is an ordinary message.
    await rig.sweep_at(utcnow() + timedelta(hours=1))
    assert len(await rig.surveys()) == 1
    assert await rig.text("4") == conv_id
    assert (await rig.conv(conv_id)).state != S.RESOLVED  # it reopened like any message
    assert (await rig.surveys())[0].score == 5


async def test_no_survey_to_an_opted_out_number(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    await rig.handled_by_a_person(who="+15550002")
    await rig.pipeline.mark_opted_out(address=Address("sms", "+15550002"))
    await rig.sweep_at(utcnow() + timedelta(minutes=10))
    await rig.sweep_at(utcnow() + timedelta(minutes=20))
    [survey] = await rig.surveys()
    assert survey.status == SurveyStatus.SUPPRESSED and survey.sent_at is None
    assert QUESTION not in texts(rig.sms)
    # Opted out after the survey was owed but before it was due: still never sent.
    await rig.handled_by_a_person(who="+15550003")
    await rig.sweep_at(utcnow())  # owed, due in 5 minutes
    await rig.pipeline.mark_opted_out(address=Address("sms", "+15550003"))
    await rig.sweep_at(utcnow() + timedelta(minutes=10))
    assert [s.status for s in await rig.surveys()] == [SurveyStatus.SUPPRESSED, SurveyStatus.SUPPRESSED]
    assert QUESTION not in texts(rig.sms)


async def test_no_survey_inside_quiet_hours(rig_factory: Callable[..., Rig]) -> None:
    now = utcnow()
    start = now.replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(hours=2)
    rig = rig_factory(csat_quiet_hours=f"{start:%H:%M}-{end:%H:%M}", csat_default_timezone="UTC")
    await rig.handled_by_a_person()
    await rig.sweep_at(now + timedelta(minutes=10))
    [survey] = await rig.surveys()
    assert survey.status == SurveyStatus.SCHEDULED and survey.due_at == end  # held to the end of quiet hours
    await rig.sweep_at(end - timedelta(minutes=1))
    assert QUESTION not in texts(rig.sms)
    await rig.sweep_at(end + timedelta(minutes=1))
    assert texts(rig.sms)[-1] == QUESTION


async def test_the_customers_own_time_zone_decides_quiet_hours(rig_factory: Callable[..., Rig]) -> None:
    from bot.customers_admin import set_profile

    rig = rig_factory(csat_quiet_hours="21:00-08:00")
    conv_id = await rig.handled_by_a_person()
    async with rig.sm() as s, s.begin():
        conv = await s.get(Conversation, conv_id)
        assert conv is not None
        await set_profile(s, customer_id=conv.customer_id, timezone="America/New_York")
    # 12:00 UTC on a January day is 07:00 in New York: quiet there, though not in UTC (the default).
    quiet_there = datetime(utcnow().year + 1, 1, 15, 12, 0, tzinfo=UTC)
    async with rig.sm() as s, s.begin():
        await s.execute(update(Conversation).where(Conversation.id == conv_id)
                        .values(resolved_at=quiet_there - timedelta(minutes=10)))
    await rig.sweep_at(quiet_there)
    [survey] = await rig.surveys()
    assert survey.status == SurveyStatus.SCHEDULED
    assert survey.due_at == datetime(quiet_there.year, 1, 15, 13, 0, tzinfo=UTC)  # 08:00 in New York
    assert QUESTION not in texts(rig.sms)


async def test_a_reply_that_is_not_a_rating_goes_on_as_a_message(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    conv_id = await rig.handled_by_a_person()
    await rig.sweep_at(utcnow() + timedelta(minutes=6))
    assert await rig.text("it broke again, can you help?") == conv_id
    conv = await rig.conv(conv_id)
    assert conv.state != S.RESOLVED  # reopened, handled as usual
    [survey] = await rig.surveys()
    assert survey.status == SurveyStatus.SENT and survey.score is None
    async with rig.sm() as s:
        stored = (await s.execute(select(func.count()).select_from(Message).where(
            Message.text == "it broke again, can you help?"))).scalar_one()
    assert stored == 1


async def test_a_late_answer_is_not_a_rating_and_nothing_is_lost(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    conv_id = await rig.handled_by_a_person()
    await rig.sweep_at(utcnow() + timedelta(minutes=6))
    async with rig.sm() as s, s.begin():
        await s.execute(update(CsatSurvey).values(expires_at=utcnow() - timedelta(minutes=1)))
    # A bare late rating: kept on the conversation (still resolved), and the customer is told clearly.
    assert await rig.text("5") == conv_id
    [survey] = await rig.surveys()
    assert survey.status == SurveyStatus.EXPIRED and survey.score is None
    assert (await rig.conv(conv_id)).state == S.RESOLVED
    assert texts(rig.sms)[-1] == rig.settings.csat_closed_message
    await rig.sweep_at(utcnow())  # the sweep has marked it expired too: the same answer
    assert await rig.text("4") == conv_id and texts(rig.sms)[-1] == rig.settings.csat_closed_message
    async with rig.sm() as s:
        late = list((await s.execute(select(Event).where(Event.kind == "csat_late_reply"))).scalars())
        stored = (await s.execute(select(Message).where(Message.text == "5"))).scalar_one()
    assert [e.data["survey_id"] for e in late] == [survey.id, survey.id] and stored.conversation_id == conv_id
    # A late rating with more to say is an ordinary message: it reopens the conversation.
    assert await rig.text("5 but the weather is still wrong") == conv_id
    assert (await rig.conv(conv_id)).state != S.RESOLVED
    [survey] = await rig.surveys()
    assert survey.score is None


async def test_a_number_for_a_newer_conversation_is_not_a_rating(rig_factory: Callable[..., Rig]) -> None:
    """Surveyed, then (after the reopen window, inside the survey's) a new conversation starts: a "2"
    there belongs to it (a numbered choice, say), never to the old survey."""
    rig = rig_factory()
    old = await rig.handled_by_a_person()
    await rig.sweep_at(utcnow() + timedelta(minutes=6))
    async with rig.sm() as s, s.begin():
        await s.execute(update(Conversation).where(Conversation.id == old)
                        .values(resolved_at=utcnow() - timedelta(hours=30)))
    new = await rig.text("how do refunds work?")
    assert new != old
    assert await rig.text("2") == new
    [survey] = await rig.surveys()
    assert (survey.status, survey.score) == (SurveyStatus.SENT, None)


async def test_bot_resolutions_are_surveyed_only_when_asked(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory()
    conv_id = await rig.text("refund?")  # the bot answers
    await rig.agents.resolve(conv_id, by="idle")
    await rig.sweep_at(utcnow() + timedelta(minutes=10))
    assert await rig.surveys() == []
    rig2 = rig_factory(csat_after_bot=True)
    await rig2.sweep_at(utcnow() + timedelta(minutes=10))
    [survey] = await rig2.surveys()
    assert survey.resolved_by == "bot"


async def test_low_score_is_queued_for_the_supervisors(rig_factory: Callable[..., Rig]) -> None:
    rig = rig_factory(slack_bot_token="xoxb-test", slack_signing_secret="s3cret-for-tests",
                      slack_supervisors_channel="C0SUPER")
    conv_id = await rig.handled_by_a_person()
    await rig.sweep_at(utcnow() + timedelta(minutes=6))
    await rig.text("1 nobody listened")
    async with rig.sm() as s:
        [entry] = (await s.execute(select(OutboxEntry).where(OutboxEntry.channel == "slack_notice"))).scalars()
    assert entry.payload["channel"] == "C0SUPER" and entry.conversation_id == conv_id
    assert entry.payload["text"] == f"CSAT 1/5 on conversation #{conv_id}: \u201cnobody listened\u201d"
