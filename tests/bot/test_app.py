"""The app factory: health, channels mounted, and KB versions published by another process picked up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from bot.app import build_parts, create_app, load_kb, watch_kb_versions
from bot.migrate import upgrade
from bot.settings import Settings
from kb_index import store as kb_store
from tests.bot.helpers import TableSearcher
from tests.kb_index.fakes import HashEmbedder


class VersionedSearcher(TableSearcher):
    def __init__(self) -> None:
        super().__init__({"refund": ("refunds", 0.9)})
        self.version = 1
        self.reloads: list[int] = []

    async def reload_if_stale(self, version: int) -> bool:
        if version == self.version:
            return False
        self.version = version
        self.reloads.append(version)
        return True


def test_app_serves_health_widget_and_the_demo_page(settings_factory: Callable[..., Settings]) -> None:
    settings = settings_factory()
    upgrade(settings.database_url)
    app = create_app(settings, kb=TableSearcher({}))
    with TestClient(app) as client:
        health = client.get("/healthz").json()
        assert health == {"ok": True, "channels": ["web"], "kb": True, "kb_status": {
            "loaded": True, "answer_threshold": 0.6, "threshold_source": "fallback"}}
        assert client.get("/").status_code == 200
        assert "javascript" in client.get("/widget.js").headers["content-type"]
        assert client.post("/api/web/session").json()["token"]


async def test_a_newer_index_version_in_the_database_is_loaded(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory(kb_reload_seconds=0.05)
    await asyncio.to_thread(upgrade, settings.database_url)
    kb = VersionedSearcher()
    parts = build_parts(settings, kb=kb)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_kb_versions(parts, stop))
    async with parts.sessionmaker() as session:
        await kb_store.record_version(session=session, index_dir=settings.index_dir, version=2, articles=3,
                                      rows=9, model="m")
    for _ in range(100):
        if kb.reloads:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await watcher
    await parts.aclose()
    assert kb.reloads == [2]


async def test_an_index_built_at_start_up_keeps_learned_phrasings_and_records_its_version(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    for aid, question in (("returns", "how do I return an item"), ("hours", "when are you open")):
        (kb_dir / f"{aid}.md").write_text(f"---\nid: {aid}\nquestions:\n  - {question}\n---\n{aid} answer.\n")
    settings = settings_factory(kb_path=kb_dir)
    await asyncio.to_thread(upgrade, settings.database_url)
    parts = build_parts(settings, kb=TableSearcher({}))
    async with parts.sessionmaker() as session:
        await kb_store.add_phrasing(session=session, article_id="returns", question="the parcel came broken")
    await parts.aclose()

    kb = await asyncio.to_thread(load_kb, settings, HashEmbedder())  # no index yet: built from kb_path
    assert ("returns", "the parcel came broken", False) in kb._state.phrasings
    assert (await kb.search("the parcel came broken"))[0].article_id == "returns"
    # ... and announces its version, as `kb ingest` does, so other processes load it
    parts = build_parts(settings, kb=TableSearcher({}))
    async with parts.sessionmaker() as session:
        assert await kb_store.current_version(session=session, index_dir=settings.index_dir) == kb.version
    await parts.aclose()


async def test_a_start_up_build_without_a_migrated_database_still_serves(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    (kb_dir / "hours.md").write_text("---\nid: hours\nquestions:\n  - when are you open\n---\n9 to 5.\n")
    settings = settings_factory(kb_path=kb_dir)  # the database file does not exist yet
    kb = await asyncio.to_thread(load_kb, settings, HashEmbedder())
    assert kb.article_ids() == ["hours"]
