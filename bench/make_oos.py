"""Build the out-of-scope Banking77 variant (seeded): drop 10 intents' articles; their test
questions become ``expected: null``. Also writes a validation file carved from the kept
articles' own questions (never from the test queries) for ``--tune-on``.

    python bench/make_oos.py [--data ../shared/data/banking77] [--out var/bench/oos] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/banking77"))
    ap.add_argument("--out", type=Path, default=Path("var/bench/oos"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--drop", type=int, default=10)
    args = ap.parse_args()
    dropped, n_arts, n_queries, n_val = make(args.data, args.out, seed=args.seed, drop=args.drop)
    print(f"dropped {dropped}; {n_arts} articles, {n_queries} queries, {n_val} validation")


def make(data: Path, out: Path, *, seed: int = 7, drop: int = 10) -> tuple[list[str], int, int, int]:
    """Write articles.jsonl, queries.jsonl, validation.jsonl and dropped.json into ``out``;
    returns (dropped intents, articles, queries, validation questions)."""
    arts = [json.loads(x) for x in (data / "articles.jsonl").read_text().splitlines() if x]
    queries = [json.loads(x) for x in (data / "queries.jsonl").read_text().splitlines() if x]
    rng = random.Random(seed)
    dropped = set(rng.sample(sorted(a["id"] for a in arts), drop))
    kept = [a for a in arts if a["id"] not in dropped]
    out.mkdir(parents=True, exist_ok=True)
    # --tune-on: 10 % of each kept article's phrasings (removed from the articles) plus 10 % of the
    # dropped articles' *train* phrasings as null: all from the train split
    val: list[dict[str, object]] = []
    out_arts = []
    for a in kept:
        qs = a["questions"][:]
        rng.shuffle(qs)
        n = max(1, len(qs) // 10)
        val.extend({"text": q, "expected": a["id"]} for q in qs[:n])
        out_arts.append({**a, "questions": qs[n:]})
    for a in arts:
        if a["id"] in dropped:
            qs = a["questions"][:]
            rng.shuffle(qs)
            val.extend({"text": q, "expected": None} for q in qs[: max(1, len(qs) // 10)])
    write(out / "articles.jsonl", out_arts)
    write(
        out / "queries.jsonl",
        [
            {"text": q["text"], "expected": None if q["expected"] in dropped else q["expected"]}
            for q in queries
        ],
    )
    write(out / "validation.jsonl", val)
    (out / "dropped.json").write_text(json.dumps(sorted(dropped), indent=2) + "\n")
    return sorted(dropped), len(out_arts), len(queries), len(val)


def write(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


if __name__ == "__main__":
    main()
