"""👍/👎 from the web chat customer on one of the bot's answers.

A 👎 marks the question that answer replied to as missed (``meta["kb"]["answered"] = False``,
``"downvoted": True``), so `switchboard kb gaps` and the report's "top unanswered" count it like a
question the bot could not answer; a ``bot_answer_rated`` event records every vote (the latest
vote on an answer counts).

A 👎 is a learning signal too: the question is stored as a negative phrasing of the answer's
article (``kb_phrasings``, ``agent_id="customer"``), which every process picks up on its reload
tick (`bot.learn_sync`) and every rebuild applies. A later 👍 removes that customer negative (an
agent's own choices are never touched; a process that learned it keeps it until the next reload of
the index).
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.models import ChannelIdentity, Conversation, Message
from kb_index.models import KBPhrasing
from kb_index.types import KbRecord

CUSTOMER = "customer"  # kb_phrasings.agent_id of a customer's 👎


class NoSuchAnswer(LookupError):
    pass


async def rate_answer(session: AsyncSession, *, identity: ChannelIdentity, message_id: int, helpful: bool) -> None:
    msg = await session.get(Message, message_id)
    conv = await session.get(Conversation, msg.conversation_id) if msg is not None else None
    if (msg is None or conv is None or conv.identity_id != identity.id or msg.direction != "out"
            or msg.author_kind != "bot" or not (msg.meta or {}).get("kb_article")):
        raise NoSuchAnswer(f"message {message_id} is not one of the bot's answers in this chat")
    vote = "up" if helpful else "down"
    msg.meta = {**(msg.meta or {}), "feedback": vote}
    question = (await session.execute(select(Message).where(
        Message.conversation_id == conv.id, Message.direction == "in", Message.id < msg.id
    ).order_by(Message.id.desc()).limit(1))).scalar_one_or_none()
    if question is not None:
        kb = KbRecord.from_meta(question.meta, text=question.text) or KbRecord(query=question.text)
        if helpful and kb.downvoted:
            kb = replace(kb, answered=True, downvoted=False)
        elif not helpful:
            kb = replace(kb, answered=False, downvoted=True)
        question.meta = {**(question.meta or {}), "kb": kb.to_meta()}
        await _learn(session, article_id=str(msg.meta["kb_article"]), question=kb.query,
                     negative=not helpful)
    await store.log_event(session, kind="bot_answer_rated", conversation_id=conv.id, data={
        "message_id": msg.id, "article_id": msg.meta.get("kb_article"), "helpful": helpful})


async def _learn(session: AsyncSession, *, article_id: str, question: str, negative: bool) -> None:
    """A 👎 adds the customer's negative phrasing (once); a 👍 takes it back."""
    text = question.strip()[:2000]
    if not text:
        return
    query = select(KBPhrasing).where(
        KBPhrasing.article_id == article_id, KBPhrasing.question == text, KBPhrasing.negative.is_(True))
    row = (await session.execute(query)).scalar_one_or_none()
    if negative and row is None:
        session.add(KBPhrasing(article_id=article_id, question=text, negative=True, agent_id=CUSTOMER))
    elif not negative and row is not None and row.agent_id == CUSTOMER:
        await session.delete(row)
