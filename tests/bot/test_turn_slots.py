"""A burst of customer messages: storing them (before we acknowledge) never waits for bot turns,
and at most `turn_slots` turns run at once (bench/webchat_load.py found intake starved by turns)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import policy_config
from bot.messages import Address, InboundMessage
from bot.models import Message
from bot.settings import Settings
from handoff.policy import Policy
from kb_index.types import Hit
from tests.bot.helpers import TableSearcher, make_core


class GatedSearcher(TableSearcher):
    """Searches wait at a gate; counts how many are in flight at once."""

    def __init__(self) -> None:
        super().__init__({"refund": ("refunds", 0.9)})
        self.gate = asyncio.Event()
        self.inside = 0
        self.most = 0

    async def search(self, query: str, *, history: Sequence[str] = (), last_article: str | None = None,
                     k: int = 3) -> list[Hit]:
        self.inside += 1
        self.most = max(self.most, self.inside)
        try:
            await self.gate.wait()
            return await super().search(query, history=history, last_article=last_article, k=k)
        finally:
            self.inside -= 1


async def test_a_burst_is_stored_at_once_while_turns_wait_for_a_slot(
    any_db: async_sessionmaker[AsyncSession], settings_factory: Callable[..., Settings]
) -> None:
    settings = settings_factory()
    kb = GatedSearcher()
    pipeline = make_core(any_db, settings, kb=kb, policy=Policy(policy_config(settings)), turn_slots=3).pipeline
    receipts = await asyncio.wait_for(asyncio.gather(*(
        pipeline.receive(InboundMessage(sender=Address("web", f"s{i}"), platform_id=f"s{i}:1",
                                        text="refund please"))
        for i in range(40))), 20)  # the gate is shut: every turn is stuck, intake is not
    assert len({r.message_id for r in receipts}) == 40
    await asyncio.sleep(0.2)
    assert kb.most == 3  # three turns searching, the others waiting for a slot (holding no connection)
    kb.gate.set()
    await asyncio.wait_for(pipeline.drain(), 30)
    async with any_db() as s:
        unprocessed = (await s.execute(select(func.count()).select_from(Message).where(
            Message.direction == "in", Message.processed_at.is_(None)))).scalar_one()
        answers = (await s.execute(select(func.count()).select_from(Message).where(
            Message.direction == "out"))).scalar_one()
    assert unprocessed == 0 and answers == 40
    assert kb.most == 3
