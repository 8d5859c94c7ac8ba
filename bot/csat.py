"""CSAT surveys: scheduled after a resolution, sent on the customer's channel outside quiet hours,
answered by a reply the pipeline recognises as a rating (docs/customers.md#csat).

    await schedule_surveys(sessionmaker, config)        # the sweep: owe one survey per resolved conversation
    await send_due_surveys(sessionmaker, conversations, config)
    receipt = await capture_rating(conversations, session, identity=identity, message=msg)  # inbound path

One survey per conversation (a unique row, whatever happens next). Never to an opted-out address
(the survey is marked ``suppressed``), never inside quiet hours in the customer's time zone (it
waits), never after the conversation came back. A reply that is not a rating goes on as an
ordinary message (and reopens the conversation as usual), and so does anything once the customer
has started a newer conversation (a "2" there answers that one). After the window no reply is a
rating: a bare "5" to the survey, still its conversation's last word, is kept there and answered
with `CSAT_CLOSED_MESSAGE` (the conversation stays resolved); anything more is an ordinary message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.csat_models import CsatSurvey, SurveyStatus
from bot.csat_parse import parse_rating
from bot.messages import InboundMessage, Receipt, utcnow
from bot.models import ChannelIdentity, Conversation, Customer, Event
from bot.models import ConversationState as S
from bot.report_rows import EventRow, aware
from bot.report_segments import segments
from channels.sms_quiet import next_allowed_send

log = logging.getLogger("switchboard.csat")

ANSWERED, LATE = "csat_answered", "csat_late_reply"
LOW_SCORE_NOTICE = "csat_low_score"


@dataclass(frozen=True, slots=True)
class CsatConfig:
    enabled: bool = True
    after_bot: bool = False
    delay: timedelta = timedelta(minutes=5)
    window: timedelta = timedelta(hours=72)
    quiet: tuple[time, time] | None = (time(21), time(8))
    default_timezone: str = "UTC"
    question: str = "How did we do? Reply with a number from 1 (poor) to 5 (great)."
    thanks: str = "Thank you for your feedback!"
    closed: str = "Thanks! That survey has closed, so we didn't record it as a rating."
    alert_at_or_below: int = 2
    supervisors_channel: str | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> CsatConfig:
        quiet: tuple[time, time] | None = None
        if settings.csat_quiet_hours:
            start, _, end = settings.csat_quiet_hours.partition("-")
            quiet = (time.fromisoformat(start.strip().zfill(5)), time.fromisoformat(end.strip().zfill(5)))
        return cls(enabled=settings.csat_enabled, after_bot=settings.csat_after_bot,
                   delay=timedelta(minutes=settings.csat_delay_minutes),
                   window=timedelta(hours=settings.csat_window_hours), quiet=quiet,
                   default_timezone=settings.csat_default_timezone, question=settings.csat_question,
                   thanks=settings.csat_thanks, closed=settings.csat_closed_message,
                   alert_at_or_below=settings.csat_alert_at_or_below,
                   supervisors_channel=settings.slack_supervisors_channel if settings.slack_enabled else None)

    def allowed_at(self, moment: datetime, timezone: str | None) -> datetime:
        """The first moment at or after `moment` outside quiet hours in `timezone`."""
        if self.quiet is None:
            return moment
        return next_allowed_send(moment, timezone, self.quiet[0], self.quiet[1], default_tz=self.default_timezone)


class Speaker(Protocol):
    async def say(self, session: AsyncSession, conv: Conversation, text: str, *, author_kind: str,
                  meta: dict[str, Any] | None = None) -> Any: ...


def resolved_by_person(events: list[EventRow]) -> bool | None:
    """Did the conversation's latest segment involve a person (None: it is not resolved)?"""
    segs = segments(events)
    if not segs or segs[-1].resolved_at is None:
        return None
    return segs[-1].human


async def schedule_surveys(sessionmaker: async_sessionmaker[AsyncSession], config: CsatConfig, *,
                           now: datetime | None = None, limit: int = 200) -> int:
    """Owe a survey for each conversation resolved within the window that has none. Returns how many."""
    if not config.enabled:
        return 0
    now = now or utcnow()
    async with sessionmaker() as session:
        surveyed = select(CsatSurvey.conversation_id)
        convs = list((await session.execute(select(Conversation).where(
            Conversation.state == S.RESOLVED, Conversation.resolved_at >= now - config.window,
            Conversation.id.not_in(surveyed)).order_by(Conversation.id).limit(limit))).scalars())
    made = 0
    for conv in convs:
        async with sessionmaker() as session:
            rows = (await session.execute(select(Event).where(Event.conversation_id == conv.id))).scalars()
            events = [EventRow(e.id, conv.id, e.kind, aware(e.at), dict(e.data or {})) for e in rows]
            identity = await session.get(ChannelIdentity, conv.identity_id)
            customer = await session.get(Customer, conv.customer_id)
        person = resolved_by_person(events)
        if person is None or identity is None or (not person and not config.after_bot):
            continue
        status = SurveyStatus.SUPPRESSED if identity.opted_out else SurveyStatus.SCHEDULED
        due = config.allowed_at(aware(conv.resolved_at or now) + config.delay, customer.timezone if customer else None)
        try:
            async with sessionmaker() as session, session.begin():
                session.add(CsatSurvey(conversation_id=conv.id, identity_id=identity.id, channel=conv.channel,
                                       status=status, resolved_by="person" if person else "bot", due_at=due))
        except IntegrityError:
            continue  # another sweep owed it first
        made += 1
    return made


async def send_due_surveys(sessionmaker: async_sessionmaker[AsyncSession], conversations: Speaker, config: CsatConfig,
                           *, now: datetime | None = None, limit: int = 100) -> list[int]:
    """Send each survey that is due, unless the customer opted out, it is quiet hours for them, or
    the conversation came back. Returns the survey ids sent."""
    now = now or utcnow()
    async with sessionmaker() as session:
        ids = list((await session.execute(select(CsatSurvey.id).where(
            CsatSurvey.status == SurveyStatus.SCHEDULED, CsatSurvey.due_at <= now).order_by(CsatSurvey.id)
            .limit(limit))).scalars())
    sent: list[int] = []
    for survey_id in ids:
        async with sessionmaker() as session, session.begin():
            survey = await session.get(CsatSurvey, survey_id, with_for_update=True)
            if survey is None or survey.status != SurveyStatus.SCHEDULED:
                continue
            conv = await store.get_conversation(session, conversation_id=survey.conversation_id, lock=True)
            identity = await session.get(ChannelIdentity, survey.identity_id)
            customer = await session.get(Customer, conv.customer_id)
            if conv.state != S.RESOLVED or identity is None or identity.opted_out:
                survey.status = SurveyStatus.SUPPRESSED
                continue
            allowed = config.allowed_at(now, customer.timezone if customer else None)
            if allowed > now:
                survey.due_at = allowed  # quiet hours for them: wait
                continue
            await conversations.say(session, conv, config.question, author_kind="system",
                                    meta={"csat": {"survey_id": survey.id, "scale": 5}})
            survey.status, survey.sent_at, survey.expires_at = SurveyStatus.SENT, now, now + config.window
            await store.log_event(session, kind="csat_sent", conversation_id=conv.id, data={"survey_id": survey.id})
            sent.append(survey.id)
    return sent


async def expire_surveys(sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime | None = None) -> int:
    now = now or utcnow()
    async with sessionmaker() as session, session.begin():
        rows = list((await session.execute(select(CsatSurvey).where(
            CsatSurvey.status == SurveyStatus.SENT, CsatSurvey.expires_at < now))).scalars())
        for survey in rows:
            survey.status = SurveyStatus.EXPIRED
    return len(rows)


async def capture_rating(conversations: Any, session: AsyncSession, *, identity: ChannelIdentity,
                         message: InboundMessage, config: CsatConfig | None = None,
                         now: datetime | None = None) -> Receipt | None:
    """In the inbound transaction: if this message answers the customer's open survey with a
    rating, store it on the surveyed conversation (which stays resolved), thank them, alert
    supervisors on a low score, and return the receipt. None: handle it as an ordinary message."""
    now = now or utcnow()
    config = config or CsatConfig.from_settings(conversations.settings)
    survey = (await session.execute(select(CsatSurvey).where(
        CsatSurvey.identity_id == identity.id, CsatSurvey.status.in_((SurveyStatus.SENT, SurveyStatus.EXPIRED)))
        .order_by(CsatSurvey.sent_at.desc()).limit(1).with_for_update())).scalar_one_or_none()
    if survey is None:
        return None
    rating = parse_rating(message.text)
    if rating is None:
        return None
    newer = (await session.execute(select(Conversation.id).where(
        Conversation.identity_id == identity.id, Conversation.id > survey.conversation_id).limit(1))).first()
    if newer is not None:
        return None  # they have moved on to a new conversation: "2" answers that one (a numbered choice...)
    conv = await store.get_conversation(session, conversation_id=survey.conversation_id, lock=True)
    expires = aware(survey.expires_at) if survey.expires_at is not None else None
    if survey.status == SurveyStatus.EXPIRED or (expires is not None and expires < now):
        return await _late(conversations, session, survey, conv, message, rating.comment, config, now)
    if conv.state != S.RESOLVED:
        return None  # the conversation came back since: this is part of it
    row = await _store_reply(session, conv, message, {"survey_id": survey.id, "score": rating.score}, now)
    survey.status, survey.score, survey.comment = SurveyStatus.ANSWERED, rating.score, rating.comment
    survey.answered_at, survey.reply_message_id = now, row.id
    await store.log_event(session, kind=ANSWERED, conversation_id=conv.id,
                          data={"survey_id": survey.id, "score": rating.score})
    if config.thanks:
        await conversations.say(session, conv, config.thanks, author_kind="system", meta={"csat": {"thanks": True}})
    if rating.score <= config.alert_at_or_below:
        await _alert(session, conv, survey, config)
    return Receipt(message_id=row.id, conversation_id=conv.id, duplicate=False, text=row.text)


async def _store_reply(session: AsyncSession, conv: Conversation, message: InboundMessage,
                       csat: dict[str, Any], now: datetime) -> Any:
    """The customer's answer, kept on the surveyed conversation (which stays resolved)."""
    return await store.add_message(
        session, conversation_id=conv.id, channel=message.channel, direction="in", author_kind="customer",
        author_name=message.display_name, text=message.text, platform_id=message.platform_id,
        meta={**dict(message.meta), "csat": csat}, created_at=message.received_at, processed_at=now)


async def _late(conversations: Any, session: AsyncSession, survey: CsatSurvey, conv: Conversation,
                message: InboundMessage, comment: str | None, config: CsatConfig, now: datetime) -> Receipt | None:
    """A rating after the survey's window: never a score. A bare rating to the survey that is still
    the last word (the conversation resolved, not reopened since, within one more window) is kept on
    that conversation and answered with `CsatConfig.closed`; anything more goes on as an ordinary
    message (None). A ``csat_late_reply`` event records both."""
    if survey.status == SurveyStatus.SENT:
        survey.status = SurveyStatus.EXPIRED
    expires = aware(survey.expires_at) if survey.expires_at is not None else now
    if now > expires + config.window:
        return None  # long after: nothing to do with the survey
    await store.log_event(session, kind=LATE, conversation_id=conv.id,
                          data={"survey_id": survey.id, "text": message.text[:200]})
    last_word = (conv.state == S.RESOLVED and conv.resolved_at is not None and survey.sent_at is not None
                 and aware(conv.resolved_at) <= aware(survey.sent_at))
    if comment is not None or not last_word:
        return None
    row = await _store_reply(session, conv, message, {"survey_id": survey.id, "late": True}, now)
    if config.closed:
        await conversations.say(session, conv, config.closed, author_kind="system", meta={"csat": {"closed": True}})
    return Receipt(message_id=row.id, conversation_id=conv.id, duplicate=False)


async def _alert(session: AsyncSession, conv: Conversation, survey: CsatSurvey, config: CsatConfig) -> None:
    """A low score: a top-level post in the supervisors' channel (`bot.desk.slack_notice`), with the thread link."""
    await store.log_event(session, kind=LOW_SCORE_NOTICE, conversation_id=conv.id,
                          data={"survey_id": survey.id, "score": survey.score})
    if not config.supervisors_channel:
        return
    await store.enqueue(session, channel="slack_notice", order_key=f"slack_notice:{conv.id}", kind="slack.notice",
                        conversation_id=conv.id, payload={
                            "channel": config.supervisors_channel, "conversation_id": conv.id,
                            "text": f"CSAT {survey.score}/5 on conversation #{conv.id}"
                                    + (f": \u201c{survey.comment}\u201d" if survey.comment else ""),
                        })
