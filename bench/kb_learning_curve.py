"""Learning from agents on Banking77: start each article with 5 phrasings, replay the other train
questions as agents' choices (kb.learn), plot test top-1 against the number of choices.

    python bench/kb_learning_curve.py [--out bench/learning_curve.png] [--step 1000]
Bounded: about 13k embeddings plus one refit per checkpoint (heads and the validation that re-tunes
weights and calibration; 15-25 min on 2 shared cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from kb_index import Article, Embedder, KnowledgeBase, build_index
from kb_index.report import machine_line, update_results

DATA = Path("/work/shared/data/banking77")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=Path("bench/learning_curve.png"))
    ap.add_argument("--step", type=int, default=1000)
    ap.add_argument("--start", type=int, default=5)
    args = ap.parse_args()
    t0 = time.perf_counter()
    arts = [json.loads(x) for x in (args.data / "articles.jsonl").read_text().splitlines() if x]
    queries = [json.loads(x) for x in (args.data / "queries.jsonl").read_text().splitlines() if x]
    rng = random.Random(0)
    start, replay = [], []
    for a in arts:
        qs = a["questions"][:]
        rng.shuffle(qs)
        start.append(Article(id=a["id"], title=a["title"], body=a["body"], questions=qs[: args.start]))
        replay.extend((a["id"], q) for q in qs[args.start :])
    rng.shuffle(replay)
    emb = Embedder.load()
    Q = emb.encode([q["text"] for q in queries])
    texts = [q["text"] for q in queries]
    expected = [q["expected"] for q in queries]

    def top1(kb: KnowledgeBase) -> float:
        hits = kb.search_vectors(Q, texts, 1)
        return float(np.mean([h[0].article_id == e for h, e in zip(hits, expected, strict=True)]))

    with tempfile.TemporaryDirectory() as tmp:
        build_index(
            [],
            Path(tmp) / "full",
            embedder=emb,
            articles=[
                Article(id=a["id"], title=a["title"], body=a["body"], questions=a["questions"]) for a in arts
            ],
            progress=False,
        )
        full = top1(KnowledgeBase.open(Path(tmp) / "full", embedder=emb))
        build_index([], Path(tmp) / "idx", embedder=emb, articles=start, progress=False)
        kb = KnowledgeBase.open(Path(tmp) / "idx", embedder=emb)
        xs, ys = [0], [top1(kb)]
        print(f"0 choices: top1 {ys[0]:.4f} (full-train {full:.4f})", flush=True)
        done = 0
        while done < len(replay):
            batch = replay[done : done + args.step]
            for s in range(0, len(batch), 64):  # agents' choices arrive concurrently: batched embedding
                await asyncio.gather(*(kb.learn(article_id=a, question=q) for a, q in batch[s : s + 64]))
            done += len(batch)
            await kb.refit_head()  # what the background refit reaches between checkpoints (re-tuned too)
            xs.append(done)
            ys.append(top1(kb))
            print(f"{done} choices: top1 {ys[-1]:.4f}", flush=True)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(xs, ys, marker="o", label="5 phrasings/article + agents' choices")
    ax.axhline(full, color="grey", linestyle="--", label=f"full train ({full:.3f})")
    ax.set_xlabel("agent choices replayed")
    ax.set_ylabel("Banking77 test top-1")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    out = {
        "choices": xs,
        "top1": [round(y, 4) for y in ys],
        "full_train": round(full, 4),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(out))
    update_results(Path(__file__).with_name("RESULTS.md"), "learning", render(out, args.start))


def render(out: dict, start: int = 5) -> str:  # type: ignore[type-arg]
    pts = " · ".join(f"{c}: {t:.3f}" for c, t in zip(out["choices"], out["top1"], strict=True))
    gap = out["full_train"] - out["top1"][-1]
    return "\n".join(
        [
            "### Learning from agents (`python bench/kb_learning_curve.py`)",
            "",
            "![learning curve](learning_curve.png)",
            "",
            f"Each Banking77 article starts with {start} phrasings; the other train questions are replayed as "
            "agents' choices (`kb.learn`, concurrent, batched), with a refit at each checkpoint (article heads, "
            "then fusion weights and calibration re-tuned on the grown questions; the background refit after "
            "every 10 % growth reaches the same state).",
            "",
            f"Test top-1 by number of choices: {pts}. Full-train index: {out['full_train']:.4f}; end of the curve "
            f"{out['top1'][-1]:.4f} ({gap * 100:.2f} points below full-train). Run time {out['seconds']} s.",
            "",
            machine_line(),
        ]
    )


if __name__ == "__main__":
    asyncio.run(main())
