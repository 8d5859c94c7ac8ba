"""`store.get_conversation(lock=True)` serialises writers on one conversation on both databases.

On SQLite a SELECT ... FOR UPDATE is not a lock (and the driver runs a transaction's first reads
outside BEGIN), so two transactions could both read "bot" and both hand the conversation off: the
customer got the handoff notice twice when "talk to a human" raced the bot's own handoff. The lock
must also refresh a conversation the session had already loaded before it locked.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.models import ChannelIdentity, Conversation, Customer


async def _conversation(sm: async_sessionmaker[AsyncSession]) -> int:
    async with sm() as session, session.begin():
        cust = Customer(display_name="Ann")
        session.add(cust)
        await session.flush()
        ident = ChannelIdentity(customer_id=cust.id, channel="web", address="s-lock")
        session.add(ident)
        await session.flush()
        conv = Conversation(customer_id=cust.id, identity_id=ident.id, channel="web")
        session.add(conv)
        await session.flush()
        return conv.id


async def test_a_locked_conversation_waits_for_the_holder_and_reads_its_change(
    any_db: async_sessionmaker[AsyncSession],
) -> None:
    conv_id = await _conversation(any_db)
    seen: list[str] = []

    async def second() -> None:
        async with any_db() as session, session.begin():
            stale = await session.get(Conversation, conv_id)  # loaded before the lock, as conversation_for does
            assert stale is not None and stale.state == "bot"
            conv = await store.get_conversation(session, conversation_id=conv_id, lock=True)
            seen.append(conv.state)

    async with any_db() as session:
        before = (await store.get_conversation(session, conversation_id=conv_id)).updated_at
    async with any_db() as session, session.begin():
        conv = await store.get_conversation(session, conversation_id=conv_id, lock=True)
        assert conv.updated_at == before  # taking the lock is not activity (idle close reads updated_at)
        waiter = asyncio.create_task(second())
        await asyncio.sleep(0.5)
        assert not waiter.done(), "the second writer read the conversation while the first held it"
        conv.state = "waiting"
    await asyncio.wait_for(waiter, timeout=20)
    assert seen == ["waiting"]
