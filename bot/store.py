"""Queries over the conversation tables: keyword-only async functions taking a session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.messages import Address, utcnow
from bot.models import (
    ChannelIdentity,
    Conversation,
    ConversationState,
    Customer,
    Event,
    Message,
    OutboxEntry,
    OutboxStatus,
)
from kb_index.types import KbRecord


async def get_or_create_identity(
    session: AsyncSession, *, address: Address, display_name: str | None = None
) -> ChannelIdentity:
    """The identity for an address, creating it (and its customer) if new. Safe under races."""
    stmt = select(ChannelIdentity).where(
        ChannelIdentity.channel == address.channel, ChannelIdentity.address == address.address
    )
    identity = (await session.execute(stmt)).scalar_one_or_none()
    if identity is not None:
        return identity
    try:
        async with session.begin_nested():
            customer = Customer(display_name=display_name)
            session.add(customer)
            await session.flush()
            identity = ChannelIdentity(customer_id=customer.id, channel=address.channel, address=address.address)
            session.add(identity)
            await session.flush()
        return identity
    except IntegrityError:
        return (await session.execute(stmt)).scalar_one()


async def find_identity(session: AsyncSession, *, address: Address) -> ChannelIdentity | None:
    stmt = select(ChannelIdentity).where(
        ChannelIdentity.channel == address.channel, ChannelIdentity.address == address.address
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_opted_out(
    session: AsyncSession, *, channel: str, address: str, opted_out: bool = True
) -> None:
    """Record that an address opted out of (or back into) everything we send it."""
    await session.execute(
        update(ChannelIdentity)
        .where(ChannelIdentity.channel == channel, ChannelIdentity.address == address)
        .values(opted_out=opted_out, opted_out_at=utcnow() if opted_out else None)
    )


async def open_conversation(session: AsyncSession, *, identity_id: int) -> Conversation | None:
    stmt = (
        select(Conversation)
        .where(Conversation.identity_id == identity_id, Conversation.state.in_(ConversationState.OPEN))
        .order_by(Conversation.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def latest_conversation(session: AsyncSession, *, identity_id: int) -> Conversation | None:
    stmt = (
        select(Conversation)
        .where(Conversation.identity_id == identity_id)
        .order_by(Conversation.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_conversation(session: AsyncSession, *, conversation_id: int, lock: bool = False) -> Conversation:
    """The conversation; with `lock`, held until the transaction ends and read fresh (also when the
    session loaded it earlier), so two writers never both act on the same old state.

    PostgreSQL: SELECT ... FOR UPDATE. SQLite has no row locks, and its driver runs a transaction's
    reads before BEGIN, so there a no-op UPDATE of the row takes the database's write lock first.
    """
    stmt = select(Conversation).where(Conversation.id == conversation_id)
    if lock:
        if session.get_bind().dialect.name == "sqlite":
            await session.execute(
                update(Conversation).where(Conversation.id == conversation_id)
                .values(id=Conversation.id, updated_at=Conversation.updated_at)  # not "activity": idle close reads it
                .execution_options(synchronize_session=False)
            )
        else:
            stmt = stmt.with_for_update()
        stmt = stmt.execution_options(populate_existing=True)
    conv = (await session.execute(stmt)).scalar_one_or_none()
    if conv is None:
        raise LookupError(f"no conversation {conversation_id}")
    return conv


# ---- reads for the handoff context package and the queues (handoff gets plain rows) ------------

HANDOFF_EVENT_KINDS: tuple[str, ...] = ("handed_off", "escalated")


async def conversation_with_customer(session: AsyncSession, *, conversation_id: int) -> Conversation | None:
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
    """The newest "handed_off" / "escalated" event (its data is `Decision.to_dict()`)."""
    stmt = (
        select(Event)
        .where(Event.conversation_id == conversation_id, Event.kind.in_(kinds))
        .order_by(Event.at.desc(), Event.id.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


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


async def unanswered_questions(*, session: AsyncSession, limit: int = 5000) -> list[str]:
    """Inbound customer messages the bot could not answer confidently (``meta["kb"]["answered"]``
    false), newest first."""
    rows: Sequence[Message] = (
        await session.scalars(
            select(Message).where(Message.direction == "in").order_by(Message.id.desc()).limit(limit * 4)
        )
    ).all()
    out: list[str] = []
    for m in rows:
        kb = KbRecord.from_meta(m.meta, text=m.text)
        if kb is not None and kb.missed:
            out.append(kb.query)
            if len(out) >= limit:
                break
    return out


async def find_message(session: AsyncSession, *, channel: str, platform_id: str) -> Message | None:
    stmt = select(Message).where(Message.channel == channel, Message.platform_id == platform_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_message(session: AsyncSession, **fields: Any) -> Message:
    message = Message(**fields)
    session.add(message)
    await session.flush()
    return message


async def transcript(
    session: AsyncSession,
    *,
    conversation_ids: Sequence[int],
    after_id: int = 0,
    limit: int = 500,
    include_internal: bool = False,
) -> list[Message]:
    stmt = select(Message).where(Message.conversation_id.in_(conversation_ids), Message.id > after_id)
    if not include_internal:
        stmt = stmt.where(Message.internal.is_(False))
    stmt = stmt.order_by(Message.id).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def recent_texts(
    session: AsyncSession,
    *,
    conversation_id: int,
    author_kinds: Sequence[str],
    before_id: int | None = None,
    limit: int = 3,
) -> list[str]:
    """The last few texts by some authors (before a message, if given), oldest first."""
    stmt = (
        select(Message.text)
        .where(
            Message.conversation_id == conversation_id,
            Message.author_kind.in_(author_kinds),
            Message.internal.is_(False),
        )
        .order_by(Message.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        stmt = stmt.where(Message.id < before_id)
    return list(reversed((await session.execute(stmt)).scalars().all()))


async def log_event(
    session: AsyncSession, *, kind: str, conversation_id: int | None, data: dict[str, Any] | None = None
) -> Event:
    event = Event(kind=kind, conversation_id=conversation_id, data=data or {}, at=utcnow())
    session.add(event)
    return event


def customer_order_key(channel: str, address: str) -> str:
    """The outbox order key of a customer's replies: they leave one at a time, in order."""
    return f"{channel}:{address}"


def thread_order_key(conversation_id: int) -> str:
    """The outbox order key of a conversation's Slack thread (its card, posts and context package)."""
    return f"slack:conv:{conversation_id}"


async def enqueue(
    session: AsyncSession,
    *,
    channel: str,
    order_key: str,
    payload: dict[str, Any],
    kind: str = "message",
    conversation_id: int | None = None,
    message_id: int | None = None,
    not_before: datetime | None = None,
) -> OutboxEntry:
    """Owe a delivery. Call inside the transaction that makes the change owing it."""
    entry = OutboxEntry(
        channel=channel,
        kind=kind,
        order_key=order_key,
        payload=payload,
        conversation_id=conversation_id,
        message_id=message_id,
        status=OutboxStatus.PENDING,
        next_attempt_at=not_before or utcnow(),
    )
    session.add(entry)
    await session.flush()
    return entry


async def list_outbox(session: AsyncSession, *, status: str | None = None, limit: int = 100) -> list[OutboxEntry]:
    stmt = select(OutboxEntry).order_by(OutboxEntry.id.desc()).limit(limit)
    if status:
        stmt = stmt.where(OutboxEntry.status == status)
    return list((await session.execute(stmt)).scalars())


async def list_conversations(
    session: AsyncSession, *, state: str | None = None, limit: int = 50
) -> list[Conversation]:
    stmt = select(Conversation).order_by(Conversation.id.desc()).limit(limit)
    if state:
        stmt = stmt.where(Conversation.state == state)
    return list((await session.execute(stmt)).scalars())
