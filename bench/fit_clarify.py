"""Fit the clarifying rule's floor (kb_index.clarify.TOP_MIN_SHARE) on the *tune* splits of the
two-turn sets in kb/eval (the held-out splits are never read here).

A clarifying question ("A or B?") helps a customer whose message is about one of the two offered
articles; it is wrong for an out-of-scope message (kb/eval/sample-oos-turns-*.jsonl: chit-chat and
unrelated requests written after a real first turn), which should go to people, and useless when
neither offered article is the right one. For every tune case the rule without a floor would ask
about, the top article's confidence is read. Product rule: an off-topic message goes to people, so
the floor (a share of the serving threshold, 0.01 steps) is the lowest at which no out-of-scope tune
message gets a question. The floor maximising useful questions minus the others, counted alike, is
printed beside it. Reads the indexes bench/kb_followups.py builds (built here if missing).

    python bench/fit_clarify.py [--data /work/shared/data/banking77] [--work var/bench/followups]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import numpy as np

from kb_index import Embedder, KnowledgeBase, build_index, clarify
from kb_index.evaluate import read_cases, run_cases

ROOT = Path(__file__).resolve().parent.parent
SERVING = clarify.SERVING


async def asks(args: argparse.Namespace) -> list[dict[str, object]]:
    """The tune cases the rule without a floor asks about: set, kind, top confidence, verdict."""
    emb = Embedder.load()
    sets = {
        "sample": (ROOT / "kb" / "sample", ("sample-followups", "sample-oos-turns")),
        "banking77": (args.data / "articles.jsonl", ("banking77-followups",)),
    }
    out: list[dict[str, object]] = []
    for name, (articles, prefixes) in sets.items():
        work = args.work / name
        if not (work / "CURRENT").exists():
            build_index(articles, work, embedder=emb, progress=False)
        kb = KnowledgeBase.open(work, embedder=emb)
        for prefix in prefixes:
            cases = read_cases(ROOT / "kb" / "eval" / f"{prefix}-tune.jsonl")
            for o in await run_cases(kb, cases, SERVING):
                if not clarify.options(o.hits, threshold=0.0):  # would ask without a floor
                    continue
                offered = {h.article_id for h in o.hits[:2]}
                if o.case.expected is None:
                    verdict = "out_of_scope"
                else:
                    verdict = "right_offered" if o.case.expected in offered else "neither"
                out.append(
                    {"set": name, "kind": o.case.kind, "top": o.hits[0].confidence, "verdict": verdict}
                )
    return out


def counts(rows: list[dict[str, object]], share: float) -> dict[str, int]:
    kept = [r for r in rows if float(r["top"]) >= share * SERVING]  # type: ignore[arg-type]
    return {v: sum(r["verdict"] == v for r in kept) for v in ("right_offered", "out_of_scope", "neither")}


def fit(rows: list[dict[str, object]]) -> tuple[float, dict[str, int]]:
    """The lowest floor (a share of the serving threshold, 0.01 steps) at which no out-of-scope
    tune message is asked: as many useful questions as possible under the product rule that an
    off-topic message goes to people."""
    for share in np.round(np.arange(0.0, 1.42, 0.01), 2):
        c = counts(rows, float(share))
        if c["out_of_scope"] == 0:
            return float(share), c
    return 1.42, counts(rows, 1.42)


def by_count(rows: list[dict[str, object]]) -> tuple[float, dict[str, int]]:
    """For comparison: the floor maximising questions offering the right article minus the others
    (out of scope or offering neither), each counted once; ties to the higher floor."""
    best: tuple[int, float, dict[str, int]] = (-(10**9), 0.0, {})
    for share in np.round(np.arange(0.0, 1.42, 0.01), 2):
        c = counts(rows, float(share))
        gain = c["right_offered"] - c["out_of_scope"] - c["neither"]
        if gain >= best[0]:
            best = (gain, float(share), c)
    return best[1], best[2]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/banking77"))
    ap.add_argument("--work", type=Path, default=Path("var/bench/followups"))
    args = ap.parse_args()
    rows = await asks(args)
    share, count = fit(rows)
    alt, alt_count = by_count(rows)
    before = counts(rows, 0.0)
    print(
        json.dumps(
            {
                "top_min_share": share,
                "floor_at_serving": round(share * SERVING, 3),
                "questions_without_floor": before,
                "questions_with_floor": count,
                "by_count_instead": {"share": alt, "questions": alt_count},
            },
            indent=2,
        )
    )
    for r in sorted(rows, key=lambda r: float(r["top"])):  # type: ignore[arg-type]
        print(f"{float(r['top']):.3f}  {r['verdict']:<14} {r['set']}/{r['kind']}")  # type: ignore[arg-type]


if __name__ == "__main__":
    asyncio.run(main())
