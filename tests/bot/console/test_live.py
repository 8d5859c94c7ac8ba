"""Live console updates: announced after the commit (never on rollback), from every desk hook, and
across processes through Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bot.app import build_parts
from bot.console.live import LocalBroadcaster, RedisBroadcaster, mark_changed
from bot.messages import Address
from bot.settings import Settings
from tests.bot.helpers import TableSearcher
from tests.fixtures.redis import redis_server_url  # noqa: F401  (the fixture)


async def test_a_change_is_announced_after_its_commit_and_never_on_rollback(db: Any) -> None:
    live = LocalBroadcaster()
    async with live.subscribe() as inbox:
        async with db() as session:
            async with session.begin():
                mark_changed(session, live, 7)
                mark_changed(session, live, 7)
                assert inbox.empty()  # not before the commit
            assert inbox.get_nowait() == 7 and inbox.empty()  # once
            try:
                async with session.begin():
                    mark_changed(session, live, 8)
                    raise RuntimeError("rolled back")
            except RuntimeError:
                pass
            async with session.begin():
                pass
        assert inbox.empty()
    assert live.listeners == 0


async def test_every_desk_hook_announces_its_conversation(settings_factory: Callable[..., Settings], db: Any) -> None:
    parts = build_parts(settings_factory(), kb=TableSearcher({}), load_knowledge_base=False)
    parts.pipeline.sessionmaker = parts.agents.sessionmaker = db
    try:
        async with parts.broadcaster.subscribe() as inbox:
            await parts.pipeline.request_human(Address("web", "s1"))  # handed off: a state change
            cid = await asyncio.wait_for(inbox.get(), 2)
            await parts.agents.resolve(cid, by="U1")
            assert await asyncio.wait_for(inbox.get(), 2) == cid
    finally:
        await parts.aclose()


async def test_redis_carries_an_announcement_to_another_process(redis_server_url: str) -> None:  # noqa: F811
    web1, web2 = RedisBroadcaster(redis_server_url), RedisBroadcaster(redis_server_url)
    try:
        async with web2.subscribe() as inbox:
            web1.announce([41, 42])
            got = [await asyncio.wait_for(inbox.get(), 5) for _ in range(2)]
            assert got == [41, 42]
    finally:
        await web1.aclose()
        await web2.aclose()


async def test_a_change_in_one_process_reaches_the_pages_of_another_through_redis(
        settings_factory: Callable[..., Settings], db: Any, redis_server_url: str) -> None:  # noqa: F811
    settings = settings_factory(redis_url=redis_server_url)
    worker = build_parts(settings, kb=TableSearcher({}), load_knowledge_base=False, web=False)
    web = build_parts(settings, kb=TableSearcher({}), load_knowledge_base=False)
    worker.pipeline.sessionmaker = worker.agents.sessionmaker = db
    try:
        async with web.broadcaster.subscribe() as inbox:
            await worker.pipeline.request_human(Address("web", "s9"))  # done by the other process
            assert await asyncio.wait_for(inbox.get(), 5) >= 1
    finally:
        await worker.aclose()
        await web.aclose()
