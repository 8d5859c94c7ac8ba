"""Banking77 figures for bench/RESULTS.md: the full test set and the out-of-scope variant
(bench/make_oos.py), through the same code as `switchboard kb eval`. Bounded: two index builds
(~20k embeddings) and ~9k one-at-a-time searches; 5-15 min on 2 busy cores.

    python bench/kb_banking77.py [--data /work/shared/data/banking77] [--work var/bench]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kb_index import Embedder, KnowledgeBase, build_index
from kb_index.evaluate import evaluate, read_queries


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/banking77"))
    ap.add_argument("--work", type=Path, default=Path("var/bench"))
    args = ap.parse_args()
    oos = args.work / "oos"
    subprocess.run(
        [
            sys.executable,
            str(Path(__file__).with_name("make_oos.py")),
            "--data",
            str(args.data),
            "--out",
            str(oos),
        ],
        check=True,
    )
    asyncio.run(run(args, oos))


async def run(args: argparse.Namespace, oos: Path) -> None:
    emb = Embedder.load()
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        rep = build_index(args.data / "articles.jsonl", Path(tmp) / "full", embedder=emb, progress=False)
        kb = KnowledgeBase.open(Path(tmp) / "full", embedder=emb)
        full = await evaluate(kb, read_queries(args.data / "queries.jsonl"))
        full["validation"] = rep.validation
        full["build_seconds"] = round(rep.seconds, 1)
        full["weights"] = kb.params["weights"]
        out["banking77"] = full
        print(json.dumps({"banking77": full}), flush=True)

        rep = build_index(oos / "articles.jsonl", Path(tmp) / "oos", embedder=emb, progress=False)
        kb = KnowledgeBase.open(Path(tmp) / "oos", embedder=emb)
        queries = read_queries(oos / "queries.jsonl")
        a = await evaluate(kb, queries)
        a["validation"] = rep.validation
        out["oos_threshold_from_articles"] = a
        print(json.dumps({"oos_threshold_from_articles": a}), flush=True)
        b = await evaluate(kb, queries, tune_on=read_queries(oos / "validation.jsonl"))
        out["oos_threshold_from_tune_on"] = b
        out["seconds"] = round(time.perf_counter() - t, 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
