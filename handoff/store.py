"""Queries `handoff` needs over `bot.models` (keyword-only, async, read-mostly).

The handoff events the pipeline logs ("handed_off", "escalated") carry `Decision.to_dict()`
in `Event.data`; `latest_handoff_event` reads the newest one back for the context package.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.models import ChannelIdentity, Conversation, Event, Message

HANDOFF_EVENT_KINDS: tuple[str, ...] = ("handed_off", "escalated")


async def get_conversation(session: AsyncSession, *, conversation_id: int) -> Conversation | None:
    """The conversation with its customer and channel identity loaded."""
    stmt = (
        select(Conversation)
        .where(Conversation.id == conversation_id)
        .options(selectinload(Conversation.customer), selectinload(Conversation.identity))
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_messages(session: AsyncSession, *, conversation_id: int) -> list[Message]:
    """Every message of a conversation in the order it was stored (notes included)."""
    stmt = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
    return list((await session.execute(stmt)).scalars().all())


async def count_previous_conversations(
    session: AsyncSession, *, customer_id: int, before_conversation_id: int
) -> int:
    stmt = select(func.count(Conversation.id)).where(
        Conversation.customer_id == customer_id, Conversation.id < before_conversation_id
    )
    return int((await session.execute(stmt)).scalar_one())


async def previous_conversations(
    session: AsyncSession, *, customer_id: int, before_conversation_id: int, limit: int = 5
) -> list[Conversation]:
    """The customer's earlier conversations (any channel), newest first."""
    stmt = (
        select(Conversation)
        .where(Conversation.customer_id == customer_id, Conversation.id < before_conversation_id)
        .order_by(Conversation.id.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())


async def latest_handoff_event(
    session: AsyncSession, *, conversation_id: int, kinds: Sequence[str] = HANDOFF_EVENT_KINDS
) -> Event | None:
    stmt = (
        select(Event)
        .where(Event.conversation_id == conversation_id, Event.kind.in_(kinds))
        .order_by(Event.at.desc(), Event.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def identity_for(session: AsyncSession, *, identity_id: int) -> ChannelIdentity | None:
    return await session.get(ChannelIdentity, identity_id)


async def open_handoffs(
    session: AsyncSession, *, states: Sequence[str] = ("waiting", "escalated"), limit: int = 100
) -> list[Conversation]:
    """Conversations waiting for people, oldest handoff first (for queues and SLA sweeps)."""
    stmt = (
        select(Conversation)
        .where(Conversation.state.in_(states))
        .order_by(Conversation.handed_off_at.is_(None), Conversation.handed_off_at, Conversation.id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars().all())
