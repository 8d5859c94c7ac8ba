"""What the bot's previous message tells the next turn: the article it answered (what a follow-up
is about) and the options of a clarifying question it asked (which the reply may pick)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Message
from handoff.policy import LOW_CONFIDENCE
from kb_index import clarify
from kb_index.types import Hit, HitRecord, KbRecord


async def last_bot_meta(session: AsyncSession, *, conversation_id: int, before_id: int) -> dict[str, Any]:
    """The meta of the bot's last message before ``before_id`` ({} when there is none)."""
    meta = (
        await session.execute(
            select(Message.meta)
            .where(
                Message.conversation_id == conversation_id,
                Message.author_kind == "bot",
                Message.internal.is_(False),
                Message.id < before_id,
            )
            .order_by(Message.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    return dict(meta or {})


def answered_article(meta: dict[str, Any]) -> str | None:
    art = meta.get("kb_article")
    return art if isinstance(art, str) else None


def picked(meta: dict[str, Any], reply: str) -> Hit | None:
    """The offered article ``reply`` chooses, when the bot's last message asked which one."""
    offered = meta.get("clarify")
    if not isinstance(offered, list) or not all(isinstance(o, dict) for o in offered):
        return None
    o = clarify.pick(reply, offered)
    if o is None:
        return None
    return Hit(
        article_id=str(o["article_id"]), title=str(o.get("title", "")), snippet="",
        answer=str(o.get("answer", "")), score=1.0, confidence=1.0, url=o.get("url"),
    )


def kb_record(text: str, hits: Sequence[Hit], *, answered: bool) -> KbRecord:
    """The message's ``meta["kb"]``: the query as the KB read it (with the earlier turn when that
    made the difference; the gaps report clusters these), that earlier turn (shown with the agents'
    suggestions), whether the bot answered, and the articles proposed."""
    turn = hits[0].context if hits else None
    return KbRecord(query=f"{turn} {text}" if turn else text, answered=answered,
                    hits=tuple(HitRecord.of(h) for h in hits), context_turn=turn or None)


def ask_instead(trigger: str, also: Sequence[str], hits: Sequence[Hit], *, threshold: float) -> bool:
    """A hand-off for low confidence alone gives way to a clarifying question when one fits
    (``threshold``: the serving threshold in force)."""
    return trigger == LOW_CONFIDENCE and not also and bool(clarify.options(hits, threshold=threshold))


def clarifying(options: Sequence[Hit], *, numbered: bool) -> tuple[str, dict[str, Any]]:
    """The clarifying question and its meta: the offered articles (with the answers, so the reply
    needs no second search) and the buttons a channel may show."""
    meta: dict[str, Any] = {
        "clarify": [
            {"article_id": h.article_id, "title": h.title, "answer": h.answer, "url": h.url,
             "confidence": round(h.confidence, 4)}
            for h in options
        ],
        "options": [{"label": h.title, "value": str(i)} for i, h in enumerate(options, 1)],
    }
    return clarify.question([h.title for h in options], numbered=numbered), meta
