"""Several processes, one index folder, one database: a phrasing an agent taught one process is
searched by the others on their next tick, and a newly published index version is loaded by all.
(The index lives in one shared folder: docs/operations.md, "Where the index lives".)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from bot.app import build_parts, load_kb, watch_kb_versions
from bot.learn_sync import LearnedSync
from bot.migrate import upgrade
from bot.settings import Settings
from kb_index import KnowledgeBase, build_index
from kb_index import store as kb_store
from tests.kb_index.fakes import HashEmbedder

ARTICLES = {
    "returns": "how do I return an item",
    "hours": "when are you open",
    "shipping": "how long does delivery take",
}


def _kb_folder(root: Path) -> Path:
    kb_dir = root / "kb"
    kb_dir.mkdir()
    for aid, question in ARTICLES.items():
        (kb_dir / f"{aid}.md").write_text(f"---\nid: {aid}\nquestions:\n  - {question}\n---\n{aid} answer.\n")
    return kb_dir


async def test_a_phrasing_learned_in_one_process_is_searched_by_another(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = settings_factory(kb_path=_kb_folder(tmp_path))
    await asyncio.to_thread(upgrade, settings.database_url)
    kb_a = await asyncio.to_thread(load_kb, settings, HashEmbedder())  # builds the shared index
    kb_b = KnowledgeBase.open(settings.index_dir, embedder=HashEmbedder())  # a second process opens it
    parts = build_parts(settings, kb=kb_b, load_knowledge_base=False)
    sync_b = LearnedSync(kb_b, parts.sessionmaker)
    assert await sync_b.tick() == 0

    phrase = "my zebra parcel turned up smashed"
    # process A: what the Slack desk does when an agent picks an article (learn + store)
    await kb_a.learn(article_id="returns", question=phrase)
    async with parts.sessionmaker() as session:
        await kb_store.add_phrasing(session=session, article_id="returns", question=phrase)
        await kb_store.add_phrasing(session=session, article_id="gone", question="an article B lacks")

    assert ("returns", phrase, False) not in kb_b._learned.items
    assert await sync_b.tick() == 1  # the unknown article is skipped, not fatal
    assert ("returns", phrase, False) in kb_b._learned.items
    assert (await kb_b.search(phrase))[0].article_id == "returns"
    assert await sync_b.tick() == 0  # each row once
    sync_a = LearnedSync(kb_a, parts.sessionmaker)
    assert await sync_a.tick() == 0  # the process that learned it already has it: not added twice
    await parts.aclose()


async def test_every_process_loads_a_version_published_in_the_shared_folder(
    settings_factory: Callable[..., Settings], tmp_path: Path
) -> None:
    kb_dir = _kb_folder(tmp_path)
    settings = settings_factory(kb_path=kb_dir, kb_reload_seconds=0.05)
    await asyncio.to_thread(upgrade, settings.database_url)
    kb = await asyncio.to_thread(load_kb, settings, HashEmbedder())
    first = kb.version
    parts = build_parts(settings, kb=kb, load_knowledge_base=False)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_kb_versions(parts, stop))

    # `kb ingest` on any machine: a new article, published to the shared folder and announced
    (kb_dir / "pets.md").write_text("---\nid: pets\nquestions:\n  - can I bring my dog\n---\nDogs welcome.\n")
    report = await asyncio.to_thread(build_index, kb_dir, settings.index_dir, embedder=HashEmbedder(),
                                     progress=False)
    async with parts.sessionmaker() as session:
        await kb_store.record_version(session=session, index_dir=settings.index_dir, version=report.version,
                                      articles=report.articles, rows=report.rows, model="hash")
    for _ in range(200):
        if kb.version != first:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await watcher
    await parts.aclose()
    assert kb.version == report.version != first
    assert "pets" in kb.article_ids()
