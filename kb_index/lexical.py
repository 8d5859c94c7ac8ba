"""BM25 over the same rows as the dense index (bm25s, saved as plain json/npy files)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import bm25s
import numpy as np
import Stemmer

logging.getLogger("bm25s").setLevel(logging.WARNING)
_split = re.compile(r"(?u)\b\w\w+\b").findall  # bm25s.tokenize's defaults (scikit-learn's pattern)
_STOPWORDS = frozenset(bm25s.stopwords.STOPWORDS_EN)


def query_tokens(text: str, stemmer: Any) -> list[str]:
    """One query's stemmed tokens, as ``bm25s.tokenize(..., stopwords="en", stemmer=...)`` makes
    them, without its per-call set-up and progress-bar objects (a tenth of a millisecond per
    query: a tenth of the scoring budget)."""
    words = [w for w in _split(text.lower()) if w not in _STOPWORDS]
    return list(stemmer.stemWords(words)) if words else []


def _stemmer() -> Any:
    return Stemmer.Stemmer("english")


class Lexical:
    def __init__(self, retriever: bm25s.BM25 | None, n_docs: int) -> None:
        self.retriever = retriever
        self.n_docs = n_docs
        self.stemmer = _stemmer()

    @classmethod
    def build(cls, texts: list[str]) -> Lexical:
        stemmer = _stemmer()
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
        if not tokens.vocab:
            return cls(None, len(texts))
        r = bm25s.BM25()
        r.index(tokens, show_progress=False)
        return cls(r, len(texts))

    def save(self, path: Path) -> None:
        if self.retriever is not None:
            self.retriever.save(str(path))

    @classmethod
    def load(cls, path: Path, n_docs: int) -> Lexical:
        if not (path / "params.index.json").is_file():
            return cls(None, n_docs)
        return cls(bm25s.BM25.load(str(path)), n_docs)

    def unknown_share(self, text: str) -> float:
        """The share of ``text``'s words (stemmed, stop words and numbers left out) that no row of the
        index uses: high for an off-topic message ("tell me a joke", "my car makes a weird noise"),
        0 for a short follow-up in the KB's own words ("how long do I have?"). 0 without words."""
        words = [w for w in query_tokens(text, self.stemmer) if w and not w.isdigit()]
        if not words:
            return 0.0
        vocab = self.retriever.vocab_dict if self.retriever is not None else {}
        return sum(1 for w in words if w not in vocab) / len(words)

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(doc ids, scores), each (len(queries), k); -1 / 0 where fewer docs match."""
        ids, scores, _ = self.search_with_tokens(queries, k)
        return ids, scores

    def search_with_tokens(
        self, queries: list[str], k: int
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[list[int], int]]]:
        """``search`` plus, per query, the vocabulary ids of its known tokens and the number of
        tokens the index does not know (lexical coverage, ``kb_index.coverage``): tokenised once."""
        q = len(queries)
        ids = np.full((q, k), -1, dtype=np.int64)
        scores = np.zeros((q, k), dtype=np.float32)
        if self.retriever is None:
            return ids, scores, [([], 0) for _ in queries]
        vocab = self.retriever.vocab_dict
        toks = [query_tokens(q, self.stemmer) for q in queries]
        in_vocab = [[w for w in t if w in vocab] for t in toks]
        known = [
            ([vocab[w] for w in kept if w], sum(1 for w in t if w and w not in vocab))
            for kept, t in zip(in_vocab, toks, strict=True)
        ]
        if self.n_docs == 0 or k == 0:
            return ids, scores, known
        kk = min(k, self.n_docs)
        for i, t in enumerate(in_vocab):
            if not t:
                continue
            s = self.retriever.get_scores(t)
            top = np.argpartition(-s, kk - 1)[:kk] if kk < len(s) else np.arange(len(s))
            top = top[np.argsort(-s[top])]
            pos = s[top] > 0
            n = int(pos.sum())
            ids[i, :n] = top[pos]
            scores[i, :n] = s[top[pos]]
        return ids, scores, known
