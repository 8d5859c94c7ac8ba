"""A lexical article classifier: TF-IDF of words (1-2 grams) and characters (2-5 grams inside
words) with a linear SVM, trained on the KB's own rows. It catches wording the embedding blurs
(product names, typos) and complements the dense head. Saved as json + npy (no pickle)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import hstack

WORD: dict[str, Any] = {"ngram_range": (1, 2), "sublinear_tf": True}
CHAR: dict[str, Any] = {"analyzer": "char_wb", "ngram_range": (2, 5), "sublinear_tf": True}


class LexHead:
    def __init__(self, vectorizers: list[object], coef: np.ndarray, bias: np.ndarray) -> None:
        self.vectorizers = vectorizers
        self.coef = coef
        self.bias = bias
        self._prepared: list[tuple[Callable[[str], list[str]], dict[str, int], np.ndarray, int]] | None = None
        self._coef_t = np.zeros((0, 0))

    @classmethod
    def fit(cls, texts: list[str], y: np.ndarray, n_classes: int, *, c: float = 1.0) -> LexHead:
        from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415 heavy: scikit-learn, lexical heads
        from sklearn.svm import LinearSVC  # noqa: PLC0415 heavy: as above

        vecs = [TfidfVectorizer(**WORD), TfidfVectorizer(min_df=2, **CHAR)]
        X = hstack([v.fit_transform(texts) for v in vecs]).tocsr()
        coef = np.zeros((n_classes, X.shape[1]), np.float32)
        bias = np.full(n_classes, -1e4, np.float32)
        classes = np.unique(y)
        if len(classes) >= 2:
            svm = LinearSVC(C=c).fit(X, y)
            if len(classes) == 2:
                coef[classes] = np.vstack([-svm.coef_[0], svm.coef_[0]])
                bias[classes] = [-svm.intercept_[0], svm.intercept_[0]]
            else:
                coef[svm.classes_] = svm.coef_
                bias[svm.classes_] = svm.intercept_
        else:
            bias[classes] = 0.0
        return cls(vecs, coef, bias)

    def decision(self, texts: list[str]) -> np.ndarray:
        """Per-article scores, shape (len(texts), articles). Hand-rolled TF-IDF (same maths as
        scikit-learn's: sublinear tf, idf, l2 per vectoriser) so one query costs well under 1 ms."""
        if self._prepared is None:
            self._prepare()
        assert self._prepared is not None
        out = np.tile(self.bias, (len(texts), 1)).astype(np.float64)
        for i, text in enumerate(texts):
            for analyse, vocab, idf, offset in self._prepared:
                counts: dict[int, int] = {}
                for tok in analyse(text):
                    j = vocab.get(tok)
                    if j is not None:
                        counts[j] = counts.get(j, 0) + 1
                if not counts:
                    continue
                idx = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                tf = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
                val = tf * idf[idx]
                val /= np.linalg.norm(val)
                out[i] += val @ self._coef_t[idx + offset]
        return out

    def _prepare(self) -> None:
        prepared = []
        offset = 0
        for v in self.vectorizers:
            vocab = v.vocabulary_  # type: ignore[attr-defined]
            prepared.append((v.build_analyzer(), vocab, np.asarray(v.idf_), offset))  # type: ignore[attr-defined]
            offset += len(vocab)
        self._coef_t = np.ascontiguousarray(self.coef.T, dtype=np.float64)
        self._prepared = prepared

    def save(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        meta = []
        for i, v in enumerate(self.vectorizers):
            meta.append({"vocabulary": {k: int(j) for k, j in v.vocabulary_.items()}})  # type: ignore[attr-defined]
            np.save(path / f"idf{i}.npy", v.idf_.astype(np.float64), allow_pickle=False)  # type: ignore[attr-defined]
        (path / "vocab.json").write_text(json.dumps(meta))
        np.save(path / "coef.npy", self.coef, allow_pickle=False)
        np.save(path / "bias.npy", self.bias, allow_pickle=False)

    @classmethod
    def load(cls, path: Path) -> LexHead | None:
        if not (path / "vocab.json").is_file():
            return None
        from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415 heavy: scikit-learn, lexical heads

        meta = json.loads((path / "vocab.json").read_text())
        vecs = []
        for i, (m, kw) in enumerate(zip(meta, (WORD, CHAR), strict=True)):
            v = TfidfVectorizer(vocabulary=m["vocabulary"], **kw)
            v.idf_ = np.load(path / f"idf{i}.npy", allow_pickle=False)
            vecs.append(v)
        return cls(
            vecs,
            np.load(path / "coef.npy", allow_pickle=False),
            np.load(path / "bias.npy", allow_pickle=False),
        )
