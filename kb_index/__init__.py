"""The knowledge base: ingest, chunk, embed, index (FAISS + BM25), search, calibrated confidence,
learning from agents, versions and evaluation. Imports no `bot` module (import contract in
pyproject.toml) except ``bot.db.Base`` and ``bot.messages.utcnow`` for its own tables in
``kb_index.models``; `switchboard kb` (Settings + database) lives in ``bot.kb_cli``."""

from kb_index.build import BuildReport, Phrasing, build_index
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
from kb_index.types import Hit, Searcher

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
