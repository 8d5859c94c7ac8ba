"""The knowledge base: ingest, chunk, embed, index (FAISS + BM25), search, calibrated confidence,
learning from agents, versions and evaluation. Imports no `bot` module (import contract in
pyproject.toml) except ``bot.db.Base`` and ``bot.messages.utcnow`` for its own tables in
``kb_index.models``; `switchboard kb` (Settings + database) lives in ``bot.kb_cli``.

The names below load on first use (PEP 562): importing `kb_index.types` (as handoff does) does
not load FAISS, BM25 or the embedding stack."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kb_index.build import BuildReport, build_index
    from kb_index.embed import Batcher, Embedder
    from kb_index.errors import (
        IndexMismatchError,
        IndexNotFoundError,
        IngestError,
        KBIndexError,
        UnknownArticleError,
    )
    from kb_index.index import KnowledgeBase
    from kb_index.ingest import Article, read_sources
    from kb_index.types import Hit, Phrasing, Searcher

_WHERE = {
    "BuildReport": "build", "build_index": "build",
    "Batcher": "embed", "Embedder": "embed",
    "IndexMismatchError": "errors", "IndexNotFoundError": "errors", "IngestError": "errors",
    "KBIndexError": "errors", "UnknownArticleError": "errors",
    "KnowledgeBase": "index",
    "Article": "ingest", "read_sources": "ingest",
    "Hit": "types", "Phrasing": "types", "Searcher": "types",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'kb_index' has no attribute {name!r}")
    return getattr(importlib.import_module(f"kb_index.{module}"), name)

__all__ = [
    "Article",
    "Batcher",
    "BuildReport",
    "Embedder",
    "Hit",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IngestError",
    "KBIndexError",
    "KnowledgeBase",
    "Phrasing",
    "Searcher",
    "UnknownArticleError",
    "build_index",
    "read_sources",
]
