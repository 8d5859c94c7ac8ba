"""Fit the follow-up model (kb_index/data/followup.json) on the *tune* splits of the two-turn
sets in kb/eval (the held-out splits are never read here). Each case gives one row per candidate
article (kb_index.followup.features), labelled 1 for the expected article; a logistic regression
is fitted on all rows, the demo store's cases weighted up so both sets count about the same.

    python bench/fit_followups.py [--data /work/shared/data/banking77] [--work var/bench/followups]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from kb_index import Embedder, KnowledgeBase
from kb_index import followup as fu
from kb_index.evaluate import Case, read_cases
from kb_index.types import Hit

ROOT = Path(__file__).resolve().parent.parent
SERVING = 0.6


async def rows(kb: KnowledgeBase, cases: list[Case]) -> tuple[np.ndarray, np.ndarray]:
    async def search_text(text: str, k: int) -> list[Hit]:
        return await kb.search_text(text, k=k)

    X, y = [], []
    for c in cases:
        prev = fu.previous_turn(c.history)
        before = await kb.search_text(prev, k=1)
        last = c.last_article or (before[0].article_id if before and before[0].confidence >= SERVING else None)
        v = await fu.views(search_text, c.text, prev)
        ids, F = fu.features(v, c.text, last)
        X.append(F)
        y += [float(a == c.expected) for a in ids]
    return np.vstack(X), np.array(y)


async def run(args: argparse.Namespace) -> None:
    emb = Embedder.load()
    parts = []
    for name, prefix, weight in (
        ("sample", "sample-followups", args.sample_weight),
        ("banking77", "banking77-followups", 1.0),
    ):
        kb = KnowledgeBase.open(args.work / name, embedder=emb)  # built by bench/kb_followups.py
        X, y = await rows(kb, read_cases(ROOT / "kb" / "eval" / f"{prefix}-tune.jsonl"))
        parts.append((X, y, np.full(len(y), weight)))
        print(f"{name}: {len(y)} candidate rows, {int(y.sum())} positive")
    X = np.vstack([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    w = np.concatenate([p[2] for p in parts])
    lr = LogisticRegression(C=args.C, max_iter=2000).fit(X, y, sample_weight=w)
    model = fu.Model(
        tuple(float(c) for c in lr.coef_[0]),
        float(lr.intercept_[0]),
        fitted_on=(f"kb/eval/sample-followups-tune.jsonl (x{args.sample_weight:g}), "
                   "kb/eval/banking77-followups-tune.jsonl"),
    )
    model.save(args.out)
    for f, c in zip(fu.FEATURES, model.coef, strict=True):
        print(f"{f:>20} {c:+.3f}")
    print(f"{'intercept':>20} {model.intercept:+.3f} -> {args.out}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("var/bench/followups"))
    ap.add_argument("--out", type=Path, default=fu.MODEL_PATH)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--sample-weight", type=float, default=4.0, help="weight of the demo store's cases")
    asyncio.run(run(ap.parse_args()))


if __name__ == "__main__":
    main()
