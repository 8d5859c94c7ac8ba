"""KB gaps: cluster the questions the bot could not answer confidently, biggest cluster first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from kb_index.embed import Embedder

MAX_QUESTIONS = 5000


@dataclass(frozen=True, slots=True)
class Gap:
    size: int
    label: str  # the most central question of the cluster
    examples: list[str]


def gaps(
    questions: Sequence[str],
    *,
    embedder: Embedder | None = None,
    distance: float = 0.45,
    min_size: int = 1,
    examples: int = 5,
) -> list[Gap]:
    """Group similar questions (average-linkage on cosine distance below ``distance``).

    Example::

        for g in gaps(["card lost", "I lost my card", "refund?"])[:10]:
            print(g.size, g.label, g.examples)
    """
    texts = list(dict.fromkeys(q.strip() for q in questions if q and q.strip()))
    counts: dict[str, int] = {}
    for q in questions:
        if q and q.strip():
            counts[q.strip()] = counts.get(q.strip(), 0) + 1
    if not texts:
        return []
    if len(texts) > MAX_QUESTIONS:
        rng = np.random.default_rng(0)
        texts = [texts[i] for i in sorted(rng.choice(len(texts), MAX_QUESTIONS, replace=False))]
    emb = embedder or Embedder.load()
    X = emb.encode(texts)
    if len(texts) == 1:
        labels = np.zeros(1, dtype=int)
    else:
        from sklearn.cluster import AgglomerativeClustering  # noqa: PLC0415 heavy: scikit-learn loads only for kb gaps

        labels = AgglomerativeClustering(
            n_clusters=None, distance_threshold=distance, metric="cosine", linkage="average"
        ).fit_predict(X)
    out: list[Gap] = []
    for c in np.unique(labels):
        idx = np.where(labels == c)[0]
        size = sum(counts[texts[i]] for i in idx)
        if size < min_size:
            continue
        centre = X[idx].mean(0)
        order = idx[np.argsort(-(X[idx] @ centre))]
        out.append(Gap(size=size, label=texts[order[0]], examples=[texts[i] for i in order[:examples]]))
    out.sort(key=lambda g: (-g.size, g.label))
    return out
