"""KB speed on this machine, in one run (bounded: a few minutes on 2 cores).

1. query p50: KnowledgeBase.search vs the bare embedding of the same query, interleaved.
2. 64 concurrent queries: searches/s vs the model's batched embedding throughput (64 per batch).
3. 1,000,000 synthetic chunks (random unit vectors, IVF as chosen by size): search p50 + memory.
4. ingest rate: build_index over Markdown articles vs batched embedding of the same texts.

    python bench/kb_speed.py [--million 1000000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from kb_index import Article, Embedder, KnowledgeBase, build_index, storage
from kb_index.chunk import chunk
from kb_index.report import machine_line, update_results

DATA = Path("/work/shared/data/banking77")


def ms(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1000, 2)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--million", type=int, default=1_000_000)
    args = ap.parse_args()
    out: dict[str, object] = {}
    emb = Embedder.load()
    arts = [json.loads(x) for x in (DATA / "articles.jsonl").read_text().splitlines() if x]
    queries = [json.loads(x)["text"] for x in (DATA / "queries.jsonl").read_text().splitlines() if x]
    small = [Article(id=a["id"], title=a["title"], questions=a["questions"][:40]) for a in arts]
    with tempfile.TemporaryDirectory() as tmp:
        build_index([], Path(tmp), embedder=emb, articles=small, progress=False)
        kb = KnowledgeBase.open(Path(tmp), embedder=emb)
        for q in queries[:10]:  # warm up
            await kb.search(q)
            emb.encode([q])
        t_search, t_embed = [], []
        for q in queries[100:300]:
            t = time.perf_counter()
            emb.encode([q])
            t_embed.append(time.perf_counter() - t)
            t = time.perf_counter()
            await kb.search(q)
            t_search.append(time.perf_counter() - t)
        out["query_p50_ms"] = ms(t_search)
        out["bare_embedding_p50_ms"] = ms(t_embed)
        out["query_over_embedding"] = round(ms(t_search) / ms(t_embed), 3)

        rounds = 8
        batch = queries[400 : 400 + 64]
        t = time.perf_counter()
        for r in range(rounds):
            await asyncio.gather(*(kb.search(q + " " * r) for q in batch))
        conc = 64 * rounds / (time.perf_counter() - t)
        t = time.perf_counter()
        for r in range(rounds):
            emb.encode([q + " " * r for q in batch], batch_size=64)
        enc = 64 * rounds / (time.perf_counter() - t)
        out["concurrent64_qps"] = round(conc, 1)
        out["batched_embedding_qps"] = round(enc, 1)
        out["concurrent_over_batched"] = round(conc / enc, 3)

    # 3. a million synthetic chunks
    rng = np.random.default_rng(0)
    n, d = args.million, emb.dim
    V = rng.standard_normal((n, d), dtype=np.float32)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    t = time.perf_counter()
    index = storage.make_faiss(V)
    out["million_build_s"] = round(time.perf_counter() - t, 1)
    out["million_index_type"] = type(index).__name__
    del V
    Q = rng.standard_normal((200, d), dtype=np.float32)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    lat = []
    for i in range(200):
        t = time.perf_counter()
        index.search(Q[i : i + 1], 50)
        lat.append(time.perf_counter() - t)
    out["million_search_p50_ms"] = ms(lat)
    out["million_index_mb"] = round(index.ntotal * d * 4 / 2**20, 1)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    del index

    # 4. ingest rate: Markdown articles (passages) vs batched embedding of the same texts
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "kb"
        folder.mkdir()
        docs = []
        for i, a in enumerate(arts * 4):
            body = "\n\n".join(
                a["questions"][j : j + 4][0] + " " + " ".join(a["questions"][j + 1 : j + 4])
                for j in range(0, 24, 4)
            )
            (folder / f"a{i}.md").write_text(f"# {a['title']} {i}\n\n{body}\n")
            docs.append((f"{a['title']} {i}", body))
        texts = [p.embed_text(title) for title, body in docs for p in chunk(body)]
        t = time.perf_counter()
        emb.encode(texts)
        enc_rate = len(texts) / (time.perf_counter() - t)
        t = time.perf_counter()
        report = build_index(folder, Path(tmp) / "index", embedder=emb, progress=False)
        ing_rate = report.rows / (time.perf_counter() - t)
        out["ingest_rows"] = report.rows
        out["ingest_rows_per_s"] = round(ing_rate, 1)
        out["batched_embedding_rows_per_s"] = round(enc_rate, 1)
        out["ingest_over_embedding"] = round(ing_rate / enc_rate, 3)
    print(json.dumps(out, indent=2))
    update_results(Path(__file__).with_name("RESULTS.md"), "speed", render(out))


def render(o: dict) -> str:  # type: ignore[type-arg]
    def ok(flag: bool) -> str:
        return "yes" if flag else "**no**"

    return "\n".join(
        [
            "### Speed (`python bench/kb_speed.py`)",
            "",
            "| measure | figure | target | met |",
            "|---|---|---|---|",
            f"| query p50 (search, 40 phrasings × 77 articles) vs bare embedding of the same query | "
            f"{o['query_p50_ms']} ms vs {o['bare_embedding_p50_ms']} ms (×{o['query_over_embedding']}) | ≤ ×1.1 | "
            f"{ok(o['query_over_embedding'] <= 1.1)} |",
            f"| 64 concurrent searches vs batched embedding (64/batch) | {o['concurrent64_qps']} vs "
            f"{o['batched_embedding_qps']} queries/s ({o['concurrent_over_batched']:.0%}) | ≥ 80 % | "
            f"{ok(o['concurrent_over_batched'] >= 0.8)} |",
            "| dense search (FAISS, one query, k=50) over 1,000,000 synthetic chunks "
            f"({o['million_index_type']}, built in {o['million_build_s']} s) | "
            f"p50 {o['million_search_p50_ms']} ms; vectors {o['million_index_mb']} MB, "
            f"peak RSS {o['peak_rss_mb']} MB | "
            f"< 5 ms | {ok(o['million_search_p50_ms'] < 5)} |",
            f"| ingest ({o['ingest_rows']} Markdown passages) vs batched embedding of the same texts | "
            f"{o['ingest_rows_per_s']} vs {o['batched_embedding_rows_per_s']} rows/s "
            f"({o['ingest_over_embedding']:.0%}) | "
            f"≥ 90 % | {ok(o['ingest_over_embedding'] >= 0.9)} |",
            "",
            machine_line(),
        ]
    )


if __name__ == "__main__":
    asyncio.run(main())
