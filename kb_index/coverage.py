"""Lexical coverage: how much of a query's wording an article's own rows use.

A question the KB cannot answer often lands on a near-twin article (``my card was swallowed by
the ATM`` on the article about a card that has not arrived): the embedding says "close", but the
query carries a rare word the article's phrasings never use. For the top article, the calibrator
gets the IDF-weighted share of the query's known words that at least ``MIN_ROWS`` of the article's
rows contain, the rarest word it does not cover, and how many query words no row uses at all.

Derived from the BM25 index (its token-to-document postings), so it costs nothing to store and
follows every rebuild.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import csr_matrix

from kb_index.lexical import Lexical

MIN_ROWS = 2
N_FEATURES = 3
UNKNOWN_CAP = 3


class Coverage:
    def __init__(self, counts: csr_matrix, idf: np.ndarray) -> None:
        self.counts = counts  # (articles, vocabulary): rows of the article containing the token
        self.max_idf = float(idf.max()) if len(idf) else 1.0
        self._idf: list[float] = idf.tolist()  # per-query work is a handful of words: plain Python
        self._cache: dict[int, frozenset[int]] = {}

    @classmethod
    def from_lexical(
        cls, lexical: Lexical, row_article: np.ndarray, row_sign: np.ndarray, n_articles: int
    ) -> Coverage:
        """Count, per article and token, the article's positive rows containing the token."""
        r = lexical.retriever
        if r is None:
            return cls(csr_matrix((n_articles, 0)), np.zeros(0))
        indptr = np.asarray(r.scores["indptr"])
        docs = np.asarray(r.scores["indices"], dtype=np.int64)
        n_tok = len(indptr) - 1
        tok = np.repeat(np.arange(n_tok), np.diff(indptr))
        keep = row_sign[docs] > 0
        arts = row_article[docs[keep]]
        # duplicate (article, token) pairs are summed: rows of the article holding the token
        counts = csr_matrix(
            (np.ones(int(keep.sum()), np.float32), (arts, tok[keep])), shape=(n_articles, n_tok)
        )
        df = np.diff(indptr).astype(np.float64)
        idf = np.log((1.0 + lexical.n_docs) / (1.0 + df)) + 1.0
        return cls(counts, idf)

    def _covered(self, article: int) -> frozenset[int]:
        """Token ids that at least MIN_ROWS of the article's rows contain (cached per article)."""
        got = self._cache.get(article)
        if got is None:
            lo, hi = self.counts.indptr[article], self.counts.indptr[article + 1]
            cols = self.counts.indices[lo:hi][self.counts.data[lo:hi] >= MIN_ROWS]
            got = self._cache[article] = frozenset(cols.tolist())
        return got

    def features(self, tokens: list[tuple[list[int], int]], top: np.ndarray) -> np.ndarray:
        """(queries, N_FEATURES) for each query's ``top`` article. ``tokens``: per query, the ids of
        its known tokens and the number of unknown ones (``Lexical.search_with_tokens``)."""
        out = np.zeros((len(tokens), N_FEATURES))
        n_tok, idf = self.counts.shape[1], self._idf
        for i, ((ids, unknown), a) in enumerate(zip(tokens, top.tolist(), strict=True)):
            out[i, 2] = min(unknown, UNKNOWN_CAP)
            words = {w for w in ids if w < n_tok}
            if not words:
                out[i, 0] = 1.0
                continue
            covered = self._covered(a)
            total = sum(idf[w] for w in words)
            out[i, 0] = sum(idf[w] for w in words if w in covered) / max(total, 1e-9)
            out[i, 1] = max((idf[w] for w in words if w not in covered), default=0.0) / self.max_idf
        return out
