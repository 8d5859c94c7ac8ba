"""Embedding backends side by side, in ONE run (the baseline is PyTorch fp32, today's default):

1. one query at a time, interleaved over the same 200 Banking77 queries: the bare PyTorch fp32
   embedding p50, and per backend the bare embedding p50 and the KB search p50 (embedding
   included; 40 phrasings x 77 articles), plus the scoring part alone (search on a ready vector);
2. 64 concurrent searches (8 rounds), searches/s per backend;
3. Banking77 test top-1 (full KB, 3,080 queries) per backend, and the validation's threshold;
4. the demo store (kb/sample) on tests/fixtures/sample_questions.jsonl: answered right, answered
   wrong, out-of-scope answered, at the fixed 0.6 and at the index's calibrated threshold.

With ``--mpnet FOLDER`` the all-mpnet-base-v2 tier (int8) is measured too. ``--plain`` adds each
int8 model exported without smoothing (``kb_index/smooth.py``; the default export before), as
``<name>-plain``. Every ONNX backend's *fidelity* is its embeddings' cosine to the same model's
PyTorch fp32 embeddings (300 Banking77 test queries). Bounded: ~10 min on 2 busy cores (most of
it the Banking77 builds; ``--b77`` chooses which backends build it).

    python bench/kb_backends.py [--mpnet var/models/all-mpnet-base-v2] [--plain] [--no-banking77]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from kb_index import Article, Embedder, KnowledgeBase, build_index
from kb_index.evaluate import read_queries, score
from kb_index.report import machine_line, update_results

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/banking77")
CACHE = ROOT / "var" / "onnx"


def ms(xs: list[float]) -> float:
    return round(statistics.median(xs) * 1000, 2)


def load(model: str | None, backend: str, *, smooth: bool | None = None) -> Embedder:
    return Embedder.load(model, backend=backend, cache_dir=CACHE, smooth=smooth)


def fidelity(embs: dict[str, Embedder], models: dict[str, str | None], n: int = 300) -> dict[str, Any]:
    """Per ONNX backend, mean / 5th percentile / min cosine to its model's PyTorch fp32 vectors."""
    queries = [json.loads(x)["text"] for x in (DATA / "queries.jsonl").read_text().splitlines() if x]
    texts = queries[::10][:n]
    refs: dict[str | None, Any] = {}
    out: dict[str, Any] = {}
    for name, emb in embs.items():
        if emb.backend == "torch":
            continue
        model = models[name]
        if model not in refs:
            refs[model] = load(model, "torch").encode(texts)
        cos = (emb.encode(texts) * refs[model]).sum(1)
        out[name] = {
            "mean": round(float(cos.mean()), 4),
            "p05": round(float(np.quantile(cos, 0.05)), 4),
            "min": round(float(cos.min()), 4),
            "n": len(texts),
        }
    return out


async def latency(
    embs: dict[str, Embedder], tmp: Path, *, kb_name: str = "banking77", n: int = 200, rounds: int = 8
) -> dict[str, dict[str, Any]]:
    queries = [json.loads(x)["text"] for x in (DATA / "queries.jsonl").read_text().splitlines() if x]
    kbs = {}
    for name, emb in embs.items():
        if kb_name == "sample":  # the demo store: a small KB that builds in seconds
            build_index(ROOT / "kb" / "sample", tmp / f"small-{name}", embedder=emb, progress=False)
        else:
            arts = [json.loads(x) for x in (DATA / "articles.jsonl").read_text().splitlines() if x]
            small = [Article(id=a["id"], title=a["title"], questions=a["questions"][:40]) for a in arts]
            build_index([], tmp / f"small-{name}", embedder=emb, articles=small, progress=False)
        kbs[name] = KnowledgeBase.open(tmp / f"small-{name}", embedder=emb)
    for q in queries[:10]:  # warm up
        for kb in kbs.values():
            await kb.search(q)
    t_emb: dict[str, list[float]] = {n: [] for n in embs}
    t_search: dict[str, list[float]] = {n: [] for n in embs}
    t_score: dict[str, list[float]] = {n: [] for n in embs}
    for q in queries[100 : 100 + n]:
        for name, emb in embs.items():
            t = time.perf_counter()
            vec = emb.encode([q])
            t_emb[name].append(time.perf_counter() - t)
            t = time.perf_counter()
            await kbs[name].search(q)
            t_search[name].append(time.perf_counter() - t)
            t = time.perf_counter()
            kbs[name].search_vectors(vec, [q], 3)
            t_score[name].append(time.perf_counter() - t)
    out: dict[str, dict[str, Any]] = {}
    batch = queries[400 : 400 + 64]
    for name, kb in kbs.items():
        t = time.perf_counter()
        for r in range(rounds):
            await asyncio.gather(*(kb.search(q + " " * (r + 1)) for q in batch))
        out[name] = {
            "embed_p50_ms": ms(t_emb[name]),
            "search_p50_ms": ms(t_search[name]),
            "scoring_p50_ms": ms(t_score[name]),
            "concurrent64_qps": round(64 * rounds / (time.perf_counter() - t), 1),
        }
    return out


async def banking77(emb: Embedder, tmp: Path, name: str) -> dict[str, Any]:
    t = time.perf_counter()
    rep = build_index(DATA / "articles.jsonl", tmp / f"b77-{name}", embedder=emb, progress=False)
    kb = KnowledgeBase.open(tmp / f"b77-{name}", embedder=emb)
    queries = read_queries(DATA / "queries.jsonl")
    hits = await kb.search_many([t for t, _ in queries], k=5)
    r = score(hits, queries, kb.threshold)
    return {
        "top1": r["top1"],
        "mrr@5": r["mrr@5"],
        "threshold": round(kb.threshold, 4),
        "validation_top1": rep.validation.get("top1"),
        "seconds": round(time.perf_counter() - t, 1),
    }


async def sample_store(emb: Embedder, tmp: Path, name: str) -> dict[str, Any]:
    build_index(ROOT / "kb" / "sample", tmp / f"sample-{name}", embedder=emb, progress=False)
    kb = KnowledgeBase.open(tmp / f"sample-{name}", embedder=emb)
    qs = [
        json.loads(x) for x in (ROOT / "tests/fixtures/sample_questions.jsonl").read_text().splitlines() if x
    ]
    hits = await kb.search_many([q["text"] for q in qs], k=1)
    out: dict[str, Any] = {"threshold": round(kb.threshold, 4)}
    for label, thr in (("at_0.6", 0.6), ("calibrated", kb.threshold)):
        right = wrong = oos = 0
        for q, h in zip(qs, hits, strict=True):
            if not h or h[0].confidence < thr:
                continue
            if q["expected"] is None:
                oos += 1
            elif h[0].article_id == q["expected"]:
                right += 1
            else:
                wrong += 1
        out[label] = {"right": right, "wrong": wrong, "oos_answered": oos}
    out["in_scope"] = sum(q["expected"] is not None for q in qs)
    out["out_of_scope"] = sum(q["expected"] is None for q in qs)
    return out


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mpnet", default=None, help="all-mpnet-base-v2 folder (make model-mpnet)")
    ap.add_argument("--no-banking77", action="store_true")
    ap.add_argument("--no-sample", action="store_true", help="skip the demo store's answered right/wrong")
    ap.add_argument(
        "--latency-kb",
        choices=("banking77", "sample"),
        default="banking77",
        help="KB for the latency figures: 40 phrasings x 77 Banking77 articles, or the demo store",
    )
    ap.add_argument("--queries", type=int, default=200, help="one-at-a-time queries per backend")
    ap.add_argument("--rounds", type=int, default=8, help="rounds of 64 concurrent searches")
    ap.add_argument("--backends", default="torch,onnx,onnx-int8")
    ap.add_argument("--plain", action="store_true", help="also the int8 exports without smoothing")
    ap.add_argument("--no-fidelity", action="store_true", help="skip the cosines to PyTorch fp32")
    ap.add_argument(
        "--b77",
        default="torch,onnx-int8,onnx-int8-plain,mpnet-onnx-int8,mpnet-onnx-int8-plain",
        help="backends (of those loaded) whose Banking77 top-1 is measured",
    )
    args = ap.parse_args()
    embs = {b: load(None, b) for b in args.backends.split(",")}
    models: dict[str, str | None] = dict.fromkeys(embs)
    if args.plain and "onnx-int8" in embs:
        embs["onnx-int8-plain"] = load(None, "onnx-int8", smooth=False)
        models["onnx-int8-plain"] = None
    if args.mpnet:
        embs["mpnet-onnx-int8"] = load(args.mpnet, "onnx-int8")
        models["mpnet-onnx-int8"] = args.mpnet
        if args.plain:
            embs["mpnet-onnx-int8-plain"] = load(args.mpnet, "onnx-int8", smooth=False)
            models["mpnet-onnx-int8-plain"] = args.mpnet
    out: dict[str, Any] = {}
    if not args.no_fidelity:
        out["fidelity"] = fidelity(embs, models)
        print(json.dumps({"fidelity": out["fidelity"]}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out["latency"] = await latency(
            embs, Path(tmp), kb_name=args.latency_kb, n=args.queries, rounds=args.rounds
        )
        out["latency_setup"] = {"kb": args.latency_kb, "queries": args.queries, "rounds": args.rounds}
        print(json.dumps(out["latency"]), flush=True)
        if not args.no_sample:
            out["sample"] = {n: await sample_store(e, Path(tmp), n) for n, e in embs.items()}
            print(json.dumps(out["sample"]), flush=True)
        if not args.no_banking77:
            out["banking77"] = {}
            for n in args.b77.split(","):
                if n in embs:
                    out["banking77"][n] = await banking77(embs[n], Path(tmp), n)
                    print(json.dumps({n: out["banking77"][n]}), flush=True)
    print(json.dumps(out, indent=2))
    update_results(Path(__file__).with_name("RESULTS.md"), "backends", render(out))


def cosines(f: dict[str, Any] | None) -> str:
    return "–" if f is None else f"{f['mean']} / {f['p05']} / {f['min']}"


def render(o: dict[str, Any]) -> str:
    lat, b77, sample = o["latency"], o.get("banking77", {}), o.get("sample", {})
    fid = o.get("fidelity", {})
    setup = o.get("latency_setup", {"kb": "banking77", "queries": 200, "rounds": 8})
    base = lat["torch"]
    kb = (
        "40 phrasings x 77 Banking77 articles" if setup["kb"] == "banking77" else "the demo store (kb/sample)"
    )
    rows = [
        "### Embedding backends (`python bench/kb_backends.py`)",
        "",
        "One run; the baseline (PyTorch fp32, the default before ONNX Runtime) is measured beside the others. "
        f"Latency: one query at a time over the same {setup['queries']} Banking77 queries, interleaved across "
        f"backends; the KB is {kb}; *scoring* is the search on an already embedded query (BM25, lexical head, "
        f"FAISS, calibration); concurrency: {setup['rounds']} rounds of 64 searches at once. "
        "ONNX Runtime: one intra-op thread per call (int8 embeds a batch's texts one per call, "
        "the calls side by side on the cores); PyTorch: its default threads (the machine's 2 cores) "
        "on one batched call. *-plain*: the int8 export without smoothing (the default before); "
        "*cosine to fp32*: mean / 5th percentile / min over "
        f"{next(iter(fid.values()))['n'] if fid else 300} Banking77 test queries against the same model "
        "in PyTorch fp32.",
        "",
        "| backend | bare embedding p50 | KB search p50 | search / bare torch fp32 embedding | scoring p50 | "
        "64 concurrent searches/s (× torch) | cosine to fp32 | Banking77 top-1 | threshold (Banking77) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in lat.items():
        b = b77.get(name, {})
        rows.append(
            f"| {name} | {r['embed_p50_ms']} ms | {r['search_p50_ms']} ms | "
            f"×{r['search_p50_ms'] / base['embed_p50_ms']:.2f} | {r['scoring_p50_ms']} ms | "
            f"{r['concurrent64_qps']} (×{r['concurrent64_qps'] / base['concurrent64_qps']:.1f}) | "
            f"{cosines(fid.get(name))} | {b.get('top1', '–')} | {b.get('threshold', '–')} |"
        )
    if not sample:
        return "\n".join([*rows, "", machine_line()])
    rows += [
        "",
        "Demo store (kb/sample) on `tests/fixtures/sample_questions.jsonl` "
        f"({next(iter(sample.values()))['in_scope']} answerable, {next(iter(sample.values()))['out_of_scope']} "
        "not): questions the bot would answer by itself, right / wrong / out-of-scope answered.",
        "",
        "| backend | fixed 0.6 | calibrated threshold | calibrated value |",
        "|---|---|---|---|",
    ]
    for name, s in sample.items():
        a, c = s["at_0.6"], s["calibrated"]
        rows.append(
            f"| {name} | {a['right']} / {a['wrong']} / {a['oos_answered']} | "
            f"{c['right']} / {c['wrong']} / {c['oos_answered']} | {s['threshold']} |"
        )
    rows += ["", machine_line()]
    return "\n".join(rows)


if __name__ == "__main__":
    asyncio.run(main())
