"""A conversation by SMS answered by the real KB engine (sample knowledge base, bundled model)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.settings import Settings
from channels.sms_segments import plan_parts
from kb_index import KnowledgeBase, build_index
from tests.channels.sms_support import CUSTOMER, sms_rig

pytestmark = pytest.mark.slow

SAMPLE_KB = Path(__file__).resolve().parents[2] / "kb" / "sample"


async def test_question_answered_from_the_kb_then_handoff_then_agent_by_sms(
    db: async_sessionmaker[AsyncSession],
    settings_factory: Callable[..., Settings],
    embedder: Any,
    tmp_path: Path,
) -> None:
    index_dir = tmp_path / "index"
    await asyncio.to_thread(build_index, SAMPLE_KB, index_dir, embedder=embedder)
    kb = await asyncio.to_thread(KnowledgeBase.open, index_dir, embedder=embedder)
    question = "How long does delivery take?"
    async with sms_rig(db, settings_factory, kb=kb) as rig:
        hits = await kb.search(question)
        assert hits and hits[0].confidence >= rig.settings.answer_threshold  # the engine knows this one

        await rig.text(question)
        await rig.settle(within=60)
        assert rig.fake.bodies(CUSTOMER) == plan_parts(
            hits[0].answer, max_segments=rig.settings.sms_max_segments
        )
        (answer,) = await rig.messages("out")
        assert answer.meta["kb_article"] == hits[0].article_id

        await rig.text("my neighbour's parrot keeps singing opera at night")
        await rig.settle(within=60)
        assert rig.fake.bodies(CUSTOMER)[-1] == rig.settings.handoff_message
        (conv,) = await rig.conversations()
        assert conv.state == "waiting"

        await rig.agents.reply(
            conv.id,
            text="Hi, Ana here. Let me help.",
            author_id="U1",
            author_name="Ana",
            source_id="slack:C1:5.0",
        )
        await rig.settle(within=60)
        assert rig.fake.bodies(CUSTOMER)[-1] == "Hi, Ana here. Let me help."
