"""The evaluation contract behind ``switchboard kb eval``: top-1, MRR@5, recall@5, abstention
figures at a threshold tuned only on ``--tune-on`` or the articles, and per-query latency."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from kb_index.index import KnowledgeBase
from kb_index.scoring import best_threshold
from kb_index.types import Hit


def read_queries(path: Path) -> list[tuple[str, str | None]]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            out.append((str(obj["text"]), obj.get("expected")))
    return out


async def run_queries(
    kb: KnowledgeBase, queries: list[tuple[str, str | None]], *, k: int = 5
) -> tuple[list[list[Hit]], list[float]]:
    """Search one query at a time (as the bot does), timing each."""
    hits, lat = [], []
    for text, _ in queries:
        t = time.perf_counter()
        hits.append(await kb.search(text, k=k))
        lat.append((time.perf_counter() - t) * 1000)
    return hits, lat


def tune_threshold(hits: list[list[Hit]], queries: list[tuple[str, str | None]], default: float) -> float:
    conf_in, correct, conf_oos = [], [], []
    for h, (_, exp) in zip(hits, queries, strict=True):
        c = h[0].confidence if h else 0.0
        if exp is None:
            conf_oos.append(c)
        else:
            conf_in.append(c)
            correct.append(bool(h) and h[0].article_id == exp)
    if not conf_oos:
        return default
    return best_threshold(np.array(conf_in), np.array(correct), np.array(conf_oos))


async def evaluate(
    kb: KnowledgeBase,
    queries: list[tuple[str, str | None]],
    *,
    tune_on: list[tuple[str, str | None]] | None = None,
) -> dict[str, Any]:
    hits, lat = await run_queries(kb, queries)
    thr, source = kb.threshold, "articles"
    if tune_on is not None:
        t_hits, _ = await run_queries(kb, tune_on)
        thr, source = tune_threshold(t_hits, tune_on, kb.threshold), "tune-on"
    out = score(hits, queries, thr, with_threshold=tune_on is not None)
    if "threshold" in out:
        out["threshold_source"] = source
    out["latency_ms"] = {
        "p50": round(float(np.percentile(lat, 50)), 2),
        "p99": round(float(np.percentile(lat, 99)), 2),
    }
    return out


def score(
    hits: list[list[Hit]], queries: list[tuple[str, str | None]], thr: float, *, with_threshold: bool = False
) -> dict[str, Any]:
    """The contract's figures for ``hits`` (one list per query): ranking figures over the in-scope
    queries; abstention figures at ``thr`` when any query expects null (or ``with_threshold``)."""
    out: dict[str, Any] = {"n": len(queries)}
    ins = [(h, e) for h, (_, e) in zip(hits, queries, strict=True) if e is not None]
    rr, top1, rec = [], [], []
    for h, e in ins:
        ids = [x.article_id for x in h[:5]]
        top1.append(bool(ids) and ids[0] == e)
        rec.append(e in ids)
        rr.append(1.0 / (ids.index(e) + 1) if e in ids else 0.0)
    out["top1"] = round(float(np.mean(top1)), 4) if ins else None
    out["mrr@5"] = round(float(np.mean(rr)), 4) if ins else None
    out["recall@5"] = round(float(np.mean(rec)), 4) if ins else None
    if any(e is None for _, e in queries) or with_threshold:
        conf = np.array([h[0].confidence if h else 0.0 for h in hits])
        expected = [e for _, e in queries]
        is_oos = np.array([e is None for e in expected])
        right = np.array([bool(h) and h[0].article_id == e for h, e in zip(hits, expected, strict=True)])
        answered = conf >= thr
        out["threshold"] = round(float(thr), 4)
        out["in_scope_accuracy"] = (
            round(float((answered & right)[~is_oos].mean()), 4) if (~is_oos).any() else None
        )
        out["oos_recall"] = round(float((~answered)[is_oos].mean()), 4) if is_oos.any() else None
        abstained = ~answered
        out["oos_precision"] = (
            round(float(is_oos[abstained].mean()), 4) if abstained.any() and is_oos.any() else None
        )
        from sklearn.metrics import roc_auc_score

        # with out-of-scope queries: how well confidence separates in-scope from out-of-scope;
        # without: how well it separates right top answers from wrong ones
        target = ~is_oos if is_oos.any() and (~is_oos).any() else right
        out["auroc"] = (
            round(float(roc_auc_score(target, conf)), 4) if 0 < target.sum() < len(target) else None
        )
    return out
