"""bot.store's reads for the KB engine (the questions the bot could not answer, for `kb gaps`)."""

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import store
from bot.models import ChannelIdentity, Conversation, Customer, Message


async def test_unanswered_questions_reads_inbound_meta(db: async_sessionmaker[AsyncSession]) -> None:
    async with db() as session:
        cust = Customer(display_name="Ann")
        session.add(cust)
        await session.flush()
        ident = ChannelIdentity(customer_id=cust.id, channel="web", address="s1")
        session.add(ident)
        await session.flush()
        conv = Conversation(customer_id=cust.id, identity_id=ident.id, channel="web")
        session.add(conv)
        await session.flush()
        rows = [
            (
                "in",
                "do you sell gift cards?",
                {"kb": {"query": "do you sell gift cards?", "answered": False, "hits": []}},
            ),
            (
                "in",
                "where is my parcel",
                {"kb": {"query": "where is my parcel", "answered": True, "hits": []}},
            ),
            ("out", "bot reply", {"kb": {"query": "x", "answered": False}}),
            ("in", "hello", {}),
            (
                "in",
                "and with a follow-up",
                {"kb": {"query": "gift cards and with a follow-up", "answered": False}},
            ),
        ]
        for i, (direction, text, meta) in enumerate(rows):
            session.add(
                Message(
                    conversation_id=conv.id,
                    channel="web",
                    direction=direction,
                    author_kind="customer" if direction == "in" else "bot",
                    text=text,
                    platform_id=f"p{i}",
                    meta=meta,
                )
            )
        await session.commit()
    async with db() as session:
        got = await store.unanswered_questions(session=session)
    assert got == ["gift cards and with a follow-up", "do you sell gift cards?"]
