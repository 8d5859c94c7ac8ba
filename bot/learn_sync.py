"""Learned phrasings reach every process: each one reads new `kb_phrasings` rows on its reload tick.

An agent's choice in Slack is learned at once by the process that handled it (`KnowledgeBase.learn`)
and stored in `kb_phrasings` (`kb_index.store.add_phrasing`). Every web and worker process runs
`watch_learned`: every ``kb_reload_seconds`` it reads the rows stored since the last one it saw and
learns those its index does not hold yet, so a question an agent answered on one machine is
answered by the bot on all of them within one tick, without a rebuild. Rebuilds (`kb ingest`, the
start-up build) put every stored phrasing into the new version, so nothing lives only in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kb_index.errors import UnknownArticleError
from kb_index.models import KBPhrasing

log = logging.getLogger("switchboard.learn_sync")
BATCH = 500


def _known(kb: Any, key: tuple[str, str, bool]) -> bool:
    """Whether the KB already searches this (article, phrasing, negative): in its built version or
    learned since. Reads the KnowledgeBase's state through getattr so any Searcher works."""
    state = getattr(kb, "_state", None)
    learned = getattr(kb, "_learned", None)
    built = getattr(state, "phrasings", ()) if state is not None else ()
    return key in built or key in set(getattr(learned, "items", ()))


class LearnedSync:
    """Applies phrasings stored by any process to this process's KB, each once."""

    def __init__(self, kb: Any, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.kb = kb
        self.sessionmaker = sessionmaker
        self.after_id = 0

    async def tick(self) -> int:
        """Learn every phrasing stored since the last tick; how many were new to this process."""
        learn = getattr(self.kb, "learn", None)
        if learn is None:
            return 0
        added = 0
        while True:
            async with self.sessionmaker() as session:
                rows = (await session.execute(
                    select(KBPhrasing.id, KBPhrasing.article_id, KBPhrasing.question, KBPhrasing.negative)
                    .where(KBPhrasing.id > self.after_id).order_by(KBPhrasing.id).limit(BATCH)
                )).all()
            for row_id, article_id, question, negative in rows:
                key = (str(article_id), str(question).strip(), bool(negative))
                if not _known(self.kb, key):
                    try:
                        await learn(article_id=key[0], question=key[1], negative=key[2])
                        added += 1
                    except UnknownArticleError:  # not in this version; the next build re-applies it
                        log.info("learned phrasing for an article this index lacks",
                                 extra={"reason": "unknown_article"})
                self.after_id = int(row_id)
            if len(rows) < BATCH:
                return added


async def watch_learned(parts: Any, stop: asyncio.Event) -> None:
    """Every ``kb_reload_seconds``: pick up phrasings other processes learned (see module doc)."""
    every = parts.settings.kb_reload_seconds
    if parts.kb is None or getattr(parts.kb, "learn", None) is None or every <= 0:
        return
    sync = LearnedSync(parts.kb, parts.sessionmaker)
    while not stop.is_set():
        try:
            added = await sync.tick()
            if added:
                log.info("learned %s phrasing(s) stored by other processes", added)
        except Exception:
            log.exception("reading learned phrasings failed; retrying on the next tick")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every)


__all__ = ["LearnedSync", "watch_learned"]
