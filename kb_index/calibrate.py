"""Calibration on the KB's own questions: leave-phrasing-out (in scope) and leave-articles-out
(out-of-scope stand-ins) validation that tunes the fusion weights, fits the confidence
calibrator and picks the answer threshold. Used by the build and by the background refit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from kb_index.coverage import Coverage
from kb_index.heads import fit_head
from kb_index.lexhead import LexHead
from kb_index.lexical import Lexical
from kb_index.scoring import Calibrator, Signals, Weights, best_threshold, signals, tune_weights

DENSE_K = 50
LEX_K = 50
VAL_FRACTION = 0.1
VAL_MAX = 3_000
OOS_PER_ARTICLE = 40
OOS_FOLDS = 3
OOS_SHARE = 0.15


def dense_neighbours(
    Q: np.ndarray, V: np.ndarray, art_of: np.ndarray, sign: np.ndarray, k: int, exclude: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact top-k rows by cosine, optionally hiding each query's ``exclude`` article."""
    k = min(k, len(V))
    out_a = np.zeros((len(Q), k), np.int64)
    out_s = np.zeros((len(Q), k), np.float32)
    out_g = np.zeros((len(Q), k), np.int64)
    for s in range(0, len(Q), 256):
        S = Q[s : s + 256] @ V.T
        if exclude is not None:
            S[art_of[None, :] == exclude[s : s + 256, None]] = -np.inf
        top = np.argpartition(-S, k - 1, axis=1)[:, :k]
        ts = np.take_along_axis(S, top, 1)
        o = np.argsort(-ts, 1)
        top = np.take_along_axis(top, o, 1)
        out_a[s : s + 256] = art_of[top]
        out_s[s : s + 256] = np.take_along_axis(ts, o, 1)
        out_g[s : s + 256] = sign[top]
    bad = ~np.isfinite(out_s)
    out_a[bad] = -1
    out_s[bad] = 0.0
    return out_a, out_s, out_g


def validate(
    V: np.ndarray,
    art_of: np.ndarray,
    sign: np.ndarray,
    texts: list[str],
    is_question: np.ndarray,
    *,
    n_articles: int,
    seed: int,
    has_head: bool,
) -> tuple[Weights, Calibrator, float, dict[str, Any]] | None:
    """Leave-phrasing-out and leave-articles-out on the KB's own questions.

    Hold out ~10 % of each article's questions and search them against the rest (in scope: is
    the top article right?). In each of OOS_FOLDS folds, hold out a different ~15 % of the
    articles entirely and search their questions against a KB rebuilt without them (a stand-in
    for questions the KB cannot answer, often with a near-twin article left in). Tune the fusion
    weights for top-1 on the first; fit the confidence calibrator and the answer threshold on both.
    """
    rng = np.random.default_rng(seed)
    q_rows = np.flatnonzero(is_question)  # questions and learned phrasings (not passages, negatives)
    val: list[int] = []
    for a in range(n_articles):
        mine = q_rows[art_of[q_rows] == a]
        if len(mine) >= 2:
            mine = rng.permutation(mine)
            val.extend(mine[: max(1, int(round(len(mine) * VAL_FRACTION)))].tolist())
    if len(val) < 20 or n_articles < 3:
        return None
    val_arr = np.array(val, dtype=np.int64)
    if len(val_arr) > VAL_MAX:
        val_arr = rng.choice(val_arr, size=VAL_MAX, replace=False)
    is_val = np.zeros(len(is_question), bool)
    is_val[val_arr] = True
    tr = ~is_val
    Q, y = V[val_arr], art_of[val_arr]
    in_sig = _signals_for(
        Q, [texts[i] for i in val_arr], V, art_of, sign, texts, tr, n_articles=n_articles, has_head=has_head
    )

    # out-of-scope stand-ins: in each of OOS_FOLDS folds, hold out a different ~OOS_SHARE of the
    # articles entirely (rows, lexical index and both heads are built without them) and search
    # their questions, which the smaller KB cannot answer
    arts_with_q = rng.permutation(np.unique(art_of[q_rows]))
    n_out = min(max(2, int(round(OOS_SHARE * len(arts_with_q)))), len(arts_with_q) - 1)
    n_folds = max(1, min(OOS_FOLDS, len(arts_with_q) // n_out))
    oos_sigs = []
    for fold in range(n_folds):
        held = arts_with_q[fold * n_out : (fold + 1) * n_out]
        out_rows: list[int] = []
        for a in held:
            mine = q_rows[art_of[q_rows] == a]
            out_rows.extend(rng.permutation(mine)[:OOS_PER_ARTICLE].tolist())
        oos_arr = np.array(out_rows, dtype=np.int64)
        keep = tr & ~np.isin(art_of, held)
        oos_sigs.append(
            _signals_for(
                V[oos_arr],
                [texts[i] for i in oos_arr],
                V,
                art_of,
                sign,
                texts,
                keep,
                n_articles=n_articles,
                has_head=has_head,
            )
        )
    base = Weights()

    s_in = in_sig(base)
    weights, top1 = tune_weights(s_in, y, base=base, has_head=has_head, has_lex=has_head)
    top_in, f_in = s_in.features(s_in.fused(weights))
    correct = top_in == y
    f_oos = np.concatenate([s.features(s.fused(weights))[1] for s in (make(base) for make in oos_sigs)])
    feats = np.concatenate([f_in, f_oos])
    labels = np.concatenate([correct, np.zeros(len(f_oos), bool)]).astype(int)
    # OOS stand-ins weigh half the in-scope ones in total: the calibrated probability assumes
    # about a third of the traffic the bot sees is not answerable from the KB.
    sw = np.concatenate([np.ones(len(f_in)), np.full(len(f_oos), 0.5 * len(f_in) / max(1, len(f_oos)))])
    cal = Calibrator.fit(feats, labels, sw)
    c_in, c_oos = cal.predict(f_in), cal.predict(f_oos)
    thr = best_threshold(c_in, correct, c_oos)
    report = {
        "n": int(len(val_arr)),
        "top1": round(top1, 4),
        "threshold": round(thr, 4),
        "in_scope_accuracy": round(float(((c_in >= thr) & correct).mean()), 4),
        "oos_recall": round(float((c_oos < thr).mean()), 4),
        "in_scope_accuracy_at_0.6": round(float(((c_in >= 0.6) & correct).mean()), 4),
        "oos_recall_at_0.6": round(float((c_oos < 0.6).mean()), 4),
        "ece": round(ece(np.concatenate([c_in, c_oos]), labels, sw), 4),
    }
    return weights, cal, thr, report


def _signals_for(
    Q: np.ndarray,
    qtexts: list[str],
    V: np.ndarray,
    art_of: np.ndarray,
    sign: np.ndarray,
    texts: list[str],
    rows: np.ndarray,
    *,
    n_articles: int,
    has_head: bool,
) -> Callable[[Weights], Signals]:
    """Signals of queries Q against a KB made of ``rows`` only (bool mask), heads refitted on it."""
    Vt, at, st = V[rows], art_of[rows], sign[rows]
    kept_texts = [t for t, k in zip(texts, rows, strict=True) if k]
    head_logits = lex_logits = None
    if has_head:
        pos = st > 0
        W, b = fit_head(Vt[pos], at[pos], n_articles)
        head_logits = Q @ W.T + b
        lh = LexHead.fit([t for t, p in zip(kept_texts, pos, strict=True) if p], at[pos], n_articles)
        lex_logits = lh.decision(qtexts)
    lexical = Lexical.build(kept_texts)
    lid, lsc, tokens = lexical.search_with_tokens(qtexts, LEX_K)
    lart = np.where(lid >= 0, at[np.maximum(lid, 0)], -1)
    cover = Coverage.from_lexical(lexical, at, st, n_articles)

    def coverage(top: np.ndarray) -> np.ndarray:
        return cover.features(tokens, top)

    na, ns, ng = dense_neighbours(Q, Vt, at, st, DENSE_K, None)

    def make(base: Weights) -> Signals:
        return signals(
            n_articles=n_articles,
            nb_article=na,
            nb_sim=ns,
            nb_sign=ng,
            lex_article=lart,
            lex_score=lsc,
            head_logits=head_logits,
            knn_k=base.knn_k,
            knn_t=base.knn_t,
            lex_logits=lex_logits,
            lex_t=base.lex_t,
            coverage=coverage,
        )

    return make


def ece(p: np.ndarray, y: np.ndarray, w: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error (weighted)."""
    total = w.sum()
    err = 0.0
    for lo in np.linspace(0, 1, bins, endpoint=False):
        m = (p >= lo) & (p < lo + 1 / bins) if lo + 1 / bins < 1 else (p >= lo)
        if m.any():
            err += w[m].sum() / total * abs(np.average(p[m], weights=w[m]) - np.average(y[m], weights=w[m]))
    return float(err)
