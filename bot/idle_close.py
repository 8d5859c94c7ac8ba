"""Idle timers: close bot conversations nobody answers, and conversations waiting on the customer.

- `BOT_IDLE_CLOSE_HOURS`: a conversation still with the bot whose last message is older than
  that is resolved ``by="idle"`` (nothing is said; writing again reopens it).
- `WAITING_ON_CUSTOMER_CLOSE_DAYS`: an assigned conversation whose last word was a person's reply,
  with no customer answer for that long, gets `WAITING_ON_CUSTOMER_MESSAGE` and is resolved
  ``by="waiting_on_customer"``.

Each closure is checked again under the conversation's lock, so a customer who writes in the
meantime keeps the conversation open.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.agents import Agents
from bot.messages import utcnow
from bot.models import Conversation, Message
from bot.models import ConversationState as S

PEOPLE = ("agent", "supervisor")
NOTICE = "waiting_on_customer_close"


async def _last_message(session: AsyncSession, conversation_id: int) -> Message | None:
    return (await session.execute(select(Message).where(
        Message.conversation_id == conversation_id, Message.internal.is_(False)
    ).order_by(Message.id.desc()).limit(1))).scalar_one_or_none()


async def _candidates(session: AsyncSession, state: str, cutoff: datetime, limit: int) -> list[int]:
    query = (select(Conversation.id).where(Conversation.state == state, Conversation.updated_at < cutoff)
             .order_by(Conversation.id).limit(limit))
    return list((await session.execute(query)).scalars())


async def close_idle(*, sessionmaker: async_sessionmaker[AsyncSession], agents: Agents, bot_idle: timedelta,
                     waiting_on_customer: timedelta, message: str, now: datetime | None = None,
                     limit: int = 200) -> list[tuple[int, str]]:
    """One sweep; returns (conversation, reason) for each conversation closed."""
    now = now or utcnow()
    closed: list[tuple[int, str]] = []
    if bot_idle > timedelta(0):
        cutoff = now - bot_idle
        async with sessionmaker() as session:
            ids = await _candidates(session, S.BOT, cutoff, limit)
        for conv_id in ids:
            async with sessionmaker() as session:
                last = await _last_message(session, conv_id)
            if last is not None and last.created_at < cutoff and await agents.resolve(conv_id, by="idle"):
                closed.append((conv_id, "idle"))
    if waiting_on_customer > timedelta(0):
        cutoff = now - waiting_on_customer
        async with sessionmaker() as session:
            ids = await _candidates(session, S.ASSIGNED, cutoff, limit)
        for conv_id in ids:
            if await _tell_and_close(sessionmaker, agents, conv_id, cutoff, message):
                closed.append((conv_id, "waiting_on_customer"))
    return closed


async def _tell_and_close(sessionmaker: async_sessionmaker[AsyncSession], agents: Agents, conv_id: int,
                          cutoff: datetime, message: str) -> bool:
    async with sessionmaker() as session, session.begin():
        conv = await store.get_conversation(session, conversation_id=conv_id, lock=True)
        last = await _last_message(session, conv_id)
        if conv.state != S.ASSIGNED or last is None:
            return False
        told = (last.meta or {}).get(NOTICE) is True  # told on an earlier sweep that then failed to resolve
        if not told:
            if last.direction != "out" or last.author_kind not in PEOPLE or last.created_at >= cutoff:
                return False
            await agents.conversations.say(session, conv, message, author_kind="system", meta={NOTICE: True})
    return await agents.resolve(conv_id, by="waiting_on_customer")
