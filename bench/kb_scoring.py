"""Where a search's non-embedding time goes (the scoring path), one query at a time, on the
40 phrasings x 77 articles Banking77 KB with the default backend: BM25 (tokens + scores), the
lexical head, FAISS, the dense head, fusion + calibration features, the calibrator, the hits.
Each part is timed on its own over the same 300 queries; ``search_vectors`` (all of it, on an
already embedded query) is timed beside them. Bounded: well under a minute.

    python bench/kb_scoring.py
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kb_index import Article, Embedder, KnowledgeBase, build_index
from kb_index.calibrate import DENSE_K, LEX_K
from kb_index.report import machine_line, update_results

ROOT = Path(__file__).resolve().parents[1]
DATA = Path("/work/shared/data/banking77")


def p50(fn: Callable[[int], Any], n: int) -> float:
    for i in range(10):
        fn(i)
    lat = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        lat.append(time.perf_counter() - t)
    return round(statistics.median(lat) * 1000, 3)


def main() -> None:
    emb = Embedder.load(cache_dir=ROOT / "var" / "onnx")
    arts = [json.loads(x) for x in (DATA / "articles.jsonl").read_text().splitlines() if x]
    queries = [json.loads(x)["text"] for x in (DATA / "queries.jsonl").read_text().splitlines() if x][100:400]
    small = [Article(id=a["id"], title=a["title"], questions=a["questions"][:40]) for a in arts]
    with tempfile.TemporaryDirectory() as tmp:
        build_index([], Path(tmp), embedder=emb, articles=small, progress=False)
        kb = KnowledgeBase.open(Path(tmp), embedder=emb)
        st = kb._state
        Q = emb.encode(queries)
        n = len(queries)
        lex = [kb._lexical(st, [q]) for q in queries]
        sig = [kb._signals(st, Q[i : i + 1], [queries[i]], lex[i]) for i in range(n)]
        fused = [s.fused(st.weights) for s in sig]
        feats = [s.features(f)[1] for s, f in zip(sig, fused, strict=True)]
        assert st.lexhead is not None and st.head_w is not None and st.head_b is not None
        head_w, head_b, lexhead = st.head_w, st.head_b, st.lexhead
        parts = {
            "BM25 (tokens, scores, top 50)": p50(
                lambda i: st.lexical.search_with_tokens([queries[i]], LEX_K), n
            ),
            "lexical head (char/word TF-IDF, linear)": p50(lambda i: lexhead.decision([queries[i]]), n),
            "FAISS (exact, 50 nearest rows)": p50(lambda i: st.index.search(Q[i : i + 1], DENSE_K), n),
            "dense head (one matmul)": p50(lambda i: Q[i : i + 1] @ head_w.T + head_b, n),
            "all dense signals (FAISS, dense head, kNN vote, BM25 by article)": p50(
                lambda i: kb._signals(st, Q[i : i + 1], [queries[i]], lex[i]), n
            ),
            "fusion + calibration features (incl. coverage)": p50(
                lambda i: sig[i].features(sig[i].fused(st.weights)), n
            ),
            "calibrator": p50(lambda i: st.calibrator.predict(feats[i]), n),
            "three hits (best passage, snippets)": p50(
                lambda i: [kb._hit(st, int(a), Q[i], 0.0, 0.5) for a in np.argsort(-fused[i][0])[:3]], n
            ),
        }
        total = p50(lambda i: kb.search_vectors(Q[i : i + 1], [queries[i]], 3), n)
        after = p50(lambda i: kb.search_vectors(Q[i : i + 1], [queries[i]], 3, lex=lex[i]), n)
    out = {
        "parts_p50_ms": parts,
        "search_vectors_p50_ms": total,
        "after_embedding_p50_ms": after,
        "rows": int(st.index.ntotal),
    }
    print(json.dumps(out, indent=2))
    rows = [
        "### The scoring path (`python bench/kb_scoring.py`)",
        "",
        f"One query at a time, {out['rows']} rows (40 phrasings x 77 articles), default backend, each part timed "
        "alone over the same 300 queries (p50). In `KnowledgeBase.search` BM25 and the lexical head run on a "
        "second thread while the query is embedded, so they are off the critical path.",
        "",
        "| part | p50 ms |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in parts.items()],
        f"| **all of it (`search_vectors` on a ready vector)** | **{total}** |",
        f"| **what is left after the embedding** (the lexical half already done beside it) | "
        f"**{out['after_embedding_p50_ms']}** |",
        "",
        machine_line(),
    ]
    update_results(Path(__file__).with_name("RESULTS.md"), "scoring", "\n".join(rows))


if __name__ == "__main__":
    main()
