"""The optional comment after a web chat rating: the widget's 1-5 buttons answer the survey (as the
customer's reply, `bot.csat.capture_rating`); the comment box under them posts here.

    survey = await add_comment(session, identity=identity, comment="quick and kind")

Errors (all `CommentError`, a `ValueError`, with the HTTP status the web route answers):

    CommentError
      + NoSurvey        (404) -- this chat has no survey
      + NotRated        (409) -- the survey is not answered with a rating yet
      + SurveyClosed    (410) -- past the survey's window (CSAT_WINDOW_HOURS)
      + BadComment      (400) -- empty, or longer than MAX_COMMENT

A low score's comment follows the low-score notice to the supervisors' channel.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.csat_models import CsatSurvey, SurveyStatus
from bot.messages import utcnow
from bot.models import ChannelIdentity
from bot.report_rows import aware

MAX_COMMENT = 1000
COMMENTED = "csat_commented"


class CommentError(ValueError):
    status = 400


class NoSurvey(CommentError):
    status = 404


class NotRated(CommentError):
    status = 409


class SurveyClosed(CommentError):
    status = 410


class BadComment(CommentError):
    status = 400


async def add_comment(session: AsyncSession, *, identity: ChannelIdentity, comment: str,
                      alert_at_or_below: int = 2, supervisors_channel: str | None = None,
                      now: datetime | None = None) -> CsatSurvey:
    """Add `comment` to this chat's latest survey, in the caller's transaction."""
    text = comment.strip()
    if not text:
        raise BadComment("the comment is empty")
    if len(text) > MAX_COMMENT:
        raise BadComment(f"the comment is longer than {MAX_COMMENT} characters")
    now = now or utcnow()
    survey = (await session.execute(select(CsatSurvey).where(
        CsatSurvey.identity_id == identity.id, CsatSurvey.sent_at.is_not(None))
        .order_by(CsatSurvey.sent_at.desc(), CsatSurvey.id.desc()).limit(1).with_for_update())).scalar_one_or_none()
    if survey is None:
        raise NoSurvey("there is no survey in this chat to comment on")
    if survey.expires_at is not None and aware(survey.expires_at) < now:
        raise SurveyClosed("this survey has closed; write to us in the chat instead")
    if survey.status != SurveyStatus.ANSWERED or survey.score is None:
        raise NotRated("rate us from 1 to 5 first")
    survey.comment = f"{survey.comment}\n{text}" if survey.comment else text
    await store.log_event(session, kind=COMMENTED, conversation_id=survey.conversation_id,
                          data={"survey_id": survey.id})
    if survey.score <= alert_at_or_below and supervisors_channel:
        await store.enqueue(session, channel="slack_notice", order_key=f"slack_notice:{survey.conversation_id}",
                            kind="slack.notice", conversation_id=survey.conversation_id, payload={
                                "channel": supervisors_channel, "conversation_id": survey.conversation_id,
                                "text": f"CSAT {survey.score}/5 on conversation #{survey.conversation_id}, "
                                        f"comment: \u201c{text}\u201d"})
    return survey
