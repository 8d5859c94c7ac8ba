"""Fit the follow-up model (kb_index/data/followup.json) on the *tune* splits of the two-turn
sets in kb/eval (the held-out splits are never read here). Each case gives one row per candidate
article (kb_index.followup.features), labelled 1 for the expected article. Two stages:

1. *Context*: a logistic regression over every feature but ``unknown``, on the follow-ups and topic
   switches, the demo store's cases weighted up so both sets count about the same. With
   ``--keep-context`` these coefficients are taken from an existing model file instead.
2. *Scope*: with the context coefficients fixed, the ``unknown`` coefficient (L2, as sklearn's C=1)
   and the intercept are fitted on the same rows plus the demo store's out-of-scope messages after
   a real first turn (``sample-oos-turns-tune.jsonl``, every candidate labelled 0). Only a term
   that is the same for every candidate of a message is learned here, so it can hand a message to
   people but never reorder its articles.

    python bench/fit_followups.py [--keep-context] [--data /work/shared/data/banking77] [--work var/bench/followups]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from sklearn.linear_model import LogisticRegression

from kb_index import Embedder, KnowledgeBase
from kb_index import followup as fu
from kb_index.evaluate import Case, read_cases
from kb_index.types import Hit

ROOT = Path(__file__).resolve().parent.parent
SERVING = 0.6
UNKNOWN = fu.FEATURES.index("unknown")
KEPT = "context coefficients kept from "
CONTEXT = [i for i in range(len(fu.FEATURES)) if i != UNKNOWN]


async def rows(kb: KnowledgeBase, cases: list[Case]) -> tuple[np.ndarray, np.ndarray]:
    async def search_text(text: str, k: int) -> list[Hit]:
        return await kb.search_text(text, k=k)

    X, y = [], []
    for c in cases:
        prev = fu.previous_turn(c.history)
        before = await kb.search_text(prev, k=1)
        last = c.last_article or (before[0].article_id if before and before[0].confidence >= SERVING else None)
        v = await fu.views(search_text, c.text, prev)
        ids, F = fu.features(v, c.text, last, unknown=kb.unknown_share(c.text))
        X.append(F)
        y += [float(a == c.expected) for a in ids]
    return np.vstack(X), np.array(y)


def fit_scope(offset: np.ndarray, u: np.ndarray, y: np.ndarray, w: np.ndarray, start: float) -> tuple[float, float]:
    """The ``unknown`` coefficient and the intercept, given every other term (``offset``)."""

    def loss(t: np.ndarray) -> float:
        z = offset + t[0] * u + t[1]
        return float(np.sum(w * (np.logaddexp(0.0, z) - y * z)) + 0.5 * t[0] ** 2)

    res = minimize(loss, np.array([0.0, start]), method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


async def run(args: argparse.Namespace) -> None:
    emb = Embedder.load()
    parts = []
    for name, prefix, weight in (
        ("sample", "sample-followups", args.sample_weight),
        ("sample", "sample-oos-turns", args.oos_weight),
        ("banking77", "banking77-followups", 1.0),
    ):
        kb = KnowledgeBase.open(args.work / name, embedder=emb)  # built by bench/kb_followups.py
        X, y = await rows(kb, read_cases(ROOT / "kb" / "eval" / f"{prefix}-tune.jsonl"))
        parts.append((X, y, np.full(len(y), weight), prefix != "sample-oos-turns"))
        print(f"{prefix}: {len(y)} candidate rows, {int(y.sum())} positive, weight {weight:g}")
    X = np.vstack([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    w = np.concatenate([p[2] for p in parts])
    in_scope = np.concatenate([np.full(len(p[1]), p[3]) for p in parts])
    if args.keep_context:
        kept = fu.Model.load(args.keep_context)
        coef, intercept = np.array(kept.coef)[CONTEXT], kept.intercept
        origin = (kept.fitted_on or str(args.keep_context)).split(";")[0].removeprefix(KEPT)
        context_from = f"{KEPT}{origin}"
    else:
        lr = LogisticRegression(C=args.C, max_iter=2000)
        lr.fit(X[in_scope][:, CONTEXT], y[in_scope], sample_weight=w[in_scope])
        coef, intercept = lr.coef_[0], float(lr.intercept_[0])
        context_from = (
            f"kb/eval/sample-followups-tune.jsonl (x{args.sample_weight:g}), kb/eval/banking77-followups-tune.jsonl"
        )
    a, b = fit_scope(X[:, CONTEXT] @ coef, X[:, UNKNOWN], y, w, intercept)
    full = np.insert(coef, UNKNOWN, a)
    model = fu.Model(
        tuple(float(c) for c in full),
        b,
        fitted_on=(
            f"{context_from}; unknown and intercept: the same + kb/eval/sample-oos-turns-tune.jsonl "
            f"(x{args.oos_weight:g}, negatives)"
        ),
    )
    model.save(args.out)
    for f, c in zip(fu.FEATURES, model.coef, strict=True):
        print(f"{f:>20} {c:+.3f}")
    print(f"{'intercept':>20} {model.intercept:+.3f} (context stage {intercept:+.3f}) -> {args.out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("var/bench/followups"))
    ap.add_argument("--out", type=Path, default=fu.MODEL_PATH)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--sample-weight", type=float, default=4.0, help="weight of the demo store's cases")
    ap.add_argument("--oos-weight", type=float, default=1.0, help="weight of the out-of-scope messages")
    ap.add_argument(
        "--keep-context", type=Path, metavar="MODEL", help="take the context coefficients from this model file"
    )
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
