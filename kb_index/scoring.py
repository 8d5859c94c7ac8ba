"""Article-level scoring and confidence, shared by live search and build-time calibration.

Per query and article we compute four signals from the retrieved rows (chunks and phrasings):
``maxsim`` (best cosine of any of the article's rows), ``knn`` (similarity-weighted share of the
top-k neighbours' votes; agents' negatives vote against), ``head`` (a linear classifier over the
embedding trained on the KB's own phrasings) and ``bm25`` (best lexical score, relative to the
query's best). ``fused`` is their weighted sum, with weights chosen on a validation split carved
from the KB's own questions. ``confidence`` is a logistic calibration of features of the top
article (fused score, margin to the runner-up, agreement of the signals).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

# what an index built before the features below existed was calibrated on
BASIC_FEATURES = ("fused", "margin", "maxsim", "knn", "head", "bm25", "lex_agree", "dense_agree", "lex")
NEIGHBOURHOOD_FEATURES = (
    "maxsim_gap",  # best cosine of the top article minus the best of any other article
    "top3",  # mean of the top article's three best cosines: a dense neighbourhood, not one twin
    "head_p2",  # the head's runner-up probability
    "head_entropy",
)
COVERAGE_FEATURES = (
    "coverage",  # lexical coverage of the query by the top article's rows (kb_index.coverage)
    "uncovered_idf",
    "unknown_words",
)
FEATURES = BASIC_FEATURES + NEIGHBOURHOOD_FEATURES + COVERAGE_FEATURES


TOP_N = 3
_NO_COVERAGE = np.array([1.0, 0.0, 0.0])  # no lexicon: everything "covered"


@dataclass
class Weights:
    maxsim: float = 2.0
    knn: float = 1.0
    head: float = 1.0
    bm25: float = 0.1
    knn_k: int = 20
    knn_t: float = 0.05
    lex: float = 0.0
    lex_t: float = 0.2

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Calibrator:
    """Logistic regression over standardised features (named in ``features``, a subset of
    FEATURES): P(top article is right)."""

    mean: list[float] = field(default_factory=lambda: [0.0] * len(BASIC_FEATURES))
    std: list[float] = field(default_factory=lambda: [1.0] * len(BASIC_FEATURES))
    # prior for a KB too small to calibrate (< 20 held-out questions): a logistic in the best
    # cosine, 0.5 at 0.45, 0.9 at 0.6, 0.1 at 0.3 (typical all-MiniLM-L6-v2 paraphrase/unrelated cosines)
    coef: list[float] = field(default_factory=lambda: [0.0, 0.0, 14.6, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    intercept: float = -6.6
    fitted: bool = False
    features: list[str] = field(default_factory=lambda: list(BASIC_FEATURES))

    def __post_init__(self) -> None:
        unknown = set(self.features) - set(FEATURES)
        if unknown or len(self.coef) != len(self.features):
            raise ValueError(f"calibrator does not match its features: {sorted(unknown) or self.features}")
        self._cols = np.array([FEATURES.index(f) for f in self.features])
        self._mean, self._std, self._coef = (np.asarray(x) for x in (self.mean, self.std, self.coef))

    def predict(self, feats: np.ndarray) -> np.ndarray:
        """``feats``: (queries, len(FEATURES)), as ``Signals.features`` returns them."""
        z = (feats[:, self._cols] - self._mean) / self._std
        logit = z @ self._coef + self.intercept
        out: np.ndarray = 1.0 / (1.0 + np.exp(-np.clip(logit, -40, 40)))
        return out

    @classmethod
    def fit(cls, feats: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None) -> Calibrator:
        from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 heavy: scikit-learn loads only for fitting

        if len(set(labels.tolist())) < 2:
            return cls()
        mean = feats.mean(0)
        std = feats.std(0)
        std[std < 1e-6] = 1.0
        lr = LogisticRegression(C=1.0, max_iter=1000)
        lr.fit((feats - mean) / std, labels, sample_weight=weights)
        return cls(
            mean.tolist(), std.tolist(), lr.coef_[0].tolist(), float(lr.intercept_[0]), True, list(FEATURES)
        )


@dataclass
class Signals:
    """Per-article signal matrices, shape (queries, articles)."""

    maxsim: np.ndarray
    knn: np.ndarray
    head: np.ndarray
    bm25: np.ndarray
    lex: np.ndarray  # lexical classifier probability
    demoted: np.ndarray  # bool: an agent's negative phrasing is closer than any positive one
    top3: np.ndarray  # mean of the article's three best cosines (padded with the floor)
    # (top article per query) -> coverage features (kb_index.coverage), or None without a lexicon
    coverage: Callable[[np.ndarray], np.ndarray] | None = None

    def fused(self, w: Weights) -> np.ndarray:
        f = (
            w.maxsim * self.maxsim
            + w.knn * self.knn
            + w.head * self.head
            + w.bm25 * self.bm25
            + w.lex * self.lex
        )
        if self.demoted.any():
            f = np.where(self.demoted, f.min(1, keepdims=True) - 1.0, f)
        return f

    def features(self, fused: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(top article index per query, feature matrix of that article)."""
        q = np.arange(fused.shape[0])
        if fused.shape[1] >= 2:
            part = np.argpartition(-fused, 1, axis=1)[:, :2]
            a, b = part[:, 0], part[:, 1]
            swap = fused[q, b] > fused[q, a]
            top, second = np.where(swap, b, a), np.where(swap, a, b)
            margin = fused[q, top] - fused[q, second]
        else:
            top = np.zeros(len(q), dtype=np.int64)
            margin = np.ones(len(q))
        if fused.shape[1] >= 2:
            m2 = np.partition(self.maxsim, -2, axis=1)
            best, runner_up = m2[:, -1], m2[:, -2]
            mtop = self.maxsim[q, top]
            gap = mtop - np.where(mtop >= best, runner_up, best)  # minus the best *other* article
            head_p2 = np.partition(self.head, -2, axis=1)[:, -2]
        else:
            gap, head_p2 = np.ones(len(q)), np.zeros(len(q))
        p = np.clip(self.head, 1e-12, 1.0)
        entropy = -(self.head * np.log(p)).sum(1)
        cover = self.coverage(top) if self.coverage is not None else _NO_COVERAGE[None, :].repeat(len(q), 0)
        feats = np.column_stack(
            [
                fused[q, top],
                margin,
                self.maxsim[q, top],
                self.knn[q, top],
                self.head[q, top],
                self.bm25[q, top],
                (self.bm25.argmax(1) == top).astype(float),
                (self.maxsim.argmax(1) == top).astype(float),
                self.lex[q, top],
                gap,
                self.top3[q, top],
                head_p2,
                entropy,
                cover,
            ]
        )
        return top, feats


def signals(
    *,
    n_articles: int,
    nb_article: np.ndarray,
    nb_sim: np.ndarray,
    nb_sign: np.ndarray,
    lex_article: np.ndarray,
    lex_score: np.ndarray,
    head_logits: np.ndarray | None,
    knn_k: int,
    knn_t: float,
    lex_logits: np.ndarray | None = None,
    lex_t: float = 0.2,
    exclude: np.ndarray | None = None,
    coverage: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Signals:
    """Build per-article signals from neighbour lists.

    nb_*: (q, K) dense neighbours sorted by similarity (article index, cosine, +1 or -1 for an
    agent's negative; article -1 = padding). lex_*: (q, L) lexical neighbours (article, BM25
    score; -1 padding). exclude: (q,) article index to pretend absent (leave-article-out), or -1.
    """
    q, k_all = nb_sim.shape
    rows = np.repeat(np.arange(q), k_all).reshape(q, k_all)
    valid = nb_article >= 0
    floor = np.where(valid, nb_sim, np.inf).min(1, initial=np.inf)
    floor = np.where(np.isfinite(floor), floor, 0.0)
    pos = valid & (nb_sign > 0)
    neg = valid & (nb_sign < 0)
    posmax = np.full((q, n_articles), -np.inf)
    np.maximum.at(posmax, (rows[pos], nb_article[pos]), nb_sim[pos])
    maxsim = np.maximum(posmax, floor[:, None])
    if neg.any():  # agents' negatives: rare, so the common case skips this
        negmax = np.full((q, n_articles), -np.inf)
        np.maximum.at(negmax, (rows[neg], nb_article[neg]), nb_sim[neg])
        demoted = negmax >= maxsim
    else:
        demoted = np.zeros((q, n_articles), bool)
    top3 = _top_mean(nb_article, nb_sim, pos, floor, n_articles, TOP_N)

    # kNN vote over the first k valid positive-or-negative neighbours
    kk = min(knn_k, k_all)
    top_sim = np.where(valid, nb_sim, -np.inf)[:, :1]
    top_sim = np.where(np.isfinite(top_sim), top_sim, 0.0)
    w = np.exp((nb_sim[:, :kk] - top_sim) / knn_t) * valid[:, :kk]
    signed = w * np.where(nb_sign[:, :kk] < 0, -1.0, 1.0)
    m = valid[:, :kk]
    flat = (rows[:, :kk][m] * n_articles + nb_article[:, :kk][m]).astype(np.int64)
    knn = np.bincount(flat, weights=signed[m], minlength=q * n_articles).astype(np.float64, copy=False)
    knn = knn.reshape(q, n_articles)
    knn /= np.maximum((w * (nb_sign[:, :kk] > 0)).sum(1, keepdims=True), 1e-9)

    bm = np.zeros((q, n_articles))
    lv = lex_article >= 0
    if lv.any():
        lrows = np.repeat(np.arange(q), lex_article.shape[1]).reshape(lex_article.shape)
        np.maximum.at(bm, (lrows[lv], lex_article[lv]), lex_score[lv])
    if exclude is not None:
        ex = exclude >= 0
        bm[np.where(ex)[0], exclude[ex]] = 0.0
    bm /= np.maximum(bm.max(1, keepdims=True), 1e-9)

    head = _softmax(head_logits, exclude, 1.0, (q, n_articles))
    lex = _softmax(lex_logits, exclude, lex_t, (q, n_articles))
    if exclude is not None:
        ex = exclude >= 0
        idx = (np.where(ex)[0], exclude[ex])
        maxsim[idx] = floor[ex] - 1.0
        top3[idx] = floor[ex] - 1.0
        knn[idx] = -1.0
        demoted[idx] = True
    return Signals(
        maxsim=maxsim, knn=knn, head=head, bm25=bm, lex=lex, demoted=demoted, top3=top3, coverage=coverage
    )


def _top_mean(
    nb_article: np.ndarray, nb_sim: np.ndarray, use: np.ndarray, floor: np.ndarray, n_articles: int, n: int
) -> np.ndarray:
    """Per query and article: the mean of the article's ``n`` best similarities among the
    neighbours (sorted by similarity), padded with the query's floor where it has fewer."""
    q, k = nb_sim.shape
    out = np.repeat(floor[:, None], n_articles, axis=1)
    if k == 0:
        return out
    # rank of each neighbour within its article: stable sort by article keeps similarity order
    key = np.where(use, nb_article, n_articles)
    order = np.argsort(key, axis=1, kind="stable")
    a_s = np.take_along_axis(key, order, 1)
    s_s = np.take_along_axis(nb_sim, order, 1)
    idx = np.broadcast_to(np.arange(k), (q, k))
    start = np.ones((q, k), bool)
    start[:, 1:] = a_s[:, 1:] != a_s[:, :-1]
    first = np.maximum.accumulate(np.where(start, idx, 0), axis=1)
    take = ((idx - first) < n) & (a_s < n_articles)
    flat = (np.arange(q)[:, None] * n_articles + a_s)[take]
    total = np.bincount(flat, weights=s_s[take], minlength=q * n_articles).reshape(q, n_articles)
    count = np.bincount(flat, minlength=q * n_articles).reshape(q, n_articles)
    has = count > 0
    out[has] = ((total + (n - count) * floor[:, None]) / n)[has]
    return out


def _softmax(
    logits: np.ndarray | None, exclude: np.ndarray | None, t: float, shape: tuple[int, int]
) -> np.ndarray:
    if logits is None:
        return np.zeros(shape)
    z = logits.astype(np.float64) / t
    if exclude is not None:
        ex = exclude >= 0
        z[np.where(ex)[0], exclude[ex]] = -np.inf
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(1, keepdims=True)
    return out


WEIGHT_GRID = {
    "maxsim": (0.0, 1.0, 2.0, 5.0),
    "knn": (0.0, 0.5, 1.0),
    "head": (0.0, 0.5, 1.0, 2.0),
    "bm25": (0.0, 0.05, 0.1, 0.2, 0.3),
    "lex": (0.0, 0.25, 0.5, 1.0),
}


def tune_weights(
    sig: Signals, labels: np.ndarray, *, base: Weights, has_head: bool, has_lex: bool = False
) -> tuple[Weights, float]:
    """Grid search of fusion weights for top-1 accuracy on validation signals (ties: first found)."""
    best: tuple[float, Weights] = (-1.0, base)
    for wm in WEIGHT_GRID["maxsim"]:
        for wk in WEIGHT_GRID["knn"]:
            for wh in WEIGHT_GRID["head"] if has_head else (0.0,):
                for wl in WEIGHT_GRID["lex"] if has_lex else (0.0,):
                    if wm == wk == wh == wl == 0.0:
                        continue
                    for wb in WEIGHT_GRID["bm25"]:
                        w = Weights(wm, wk, wh, wb, base.knn_k, base.knn_t, wl, base.lex_t)
                        acc = float((sig.fused(w).argmax(1) == labels).mean())
                        if acc > best[0] + 1e-9:
                            best = (acc, w)
    return best[1], best[0]


def best_threshold(conf_in: np.ndarray, correct_in: np.ndarray, conf_oos: np.ndarray) -> float:
    """Threshold maximising the mean of in-scope accuracy (answered and right) and OOS recall."""
    if len(conf_in) == 0 or len(conf_oos) == 0:
        return 0.5
    cands = np.unique(np.concatenate([conf_in, conf_oos, [0.0, 1.0]]))
    best = (-1.0, 0.5)
    for t in cands:
        acc = float(((conf_in >= t) & correct_in).mean())
        rec = float((conf_oos < t).mean())
        score = (acc + rec) / 2
        if score > best[0] + 1e-12:
            best = (score, float(t))
    return best[1]
