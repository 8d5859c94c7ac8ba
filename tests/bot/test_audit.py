"""The audit log keeps who did what, and an entry lives or dies with its action's transaction."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot import audit


async def test_entries_are_kept_newest_first_and_narrowed(any_db: async_sessionmaker[AsyncSession]) -> None:
    db = any_db
    async with db() as session:
        await audit.record(session, actor="console:ana", action="reply", target_kind="conversation", target_id=7)
        await audit.record(
            session, actor="cli", action="customer.export", target_kind="customer", target_id="3",
            detail={"format": "json"},
        )
        await session.commit()
    async with db() as session:
        newest, oldest = await audit.recent(session)
        assert (newest.actor, newest.action, newest.target_id, newest.detail) == (
            "cli", "customer.export", "3", {"format": "json"}
        )
        assert (oldest.actor, oldest.target_kind, oldest.target_id) == ("console:ana", "conversation", "7")
        assert oldest.at <= newest.at
        (only,) = await audit.recent(session, target_kind="conversation", target_id=7)
        assert only.action == "reply"
        assert await audit.recent(session, actor="nobody") == []


async def test_an_action_rolled_back_leaves_no_entry(any_db: async_sessionmaker[AsyncSession]) -> None:
    db = any_db
    with pytest.raises(RuntimeError):
        async with db() as session, session.begin():
            await audit.record(session, actor="console:ana", action="resolve", target_kind="conversation", target_id=1)
            raise RuntimeError("the action failed")
    async with db() as session:
        assert await audit.recent(session) == []
