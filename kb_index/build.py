"""Building an index version: read sources, chunk, embed what changed, fit the article head,
calibrate on a validation split of the KB's own questions, write a new version folder, swap."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from kb_index import storage
from kb_index.chunk import chunk
from kb_index.coverage import Coverage
from kb_index.embed import Embedder
from kb_index.errors import IngestError
from kb_index.ingest import Article, read_sources
from kb_index.lexhead import LexHead
from kb_index.lexical import Lexical
from kb_index.scoring import Calibrator, Signals, Weights, best_threshold, signals, tune_weights

POSITIVE = ("passage", "question", "learned")
DENSE_K = 50
LEX_K = 50
HEAD_MAX_ROWS = 300_000
HEAD_MAX_ARTICLES = 5_000
VAL_FRACTION = 0.1
VAL_MAX = 3_000
OOS_PER_ARTICLE = 40
OOS_FOLDS = 3
OOS_SHARE = 0.15


class Phrasing(NamedTuple):
    """A question an agent tied to an article (or marked as not answered by it: negative)."""

    article_id: str
    question: str
    negative: bool = False


@dataclass
class BuildReport:
    version: int
    path: Path
    articles: int = 0
    rows: int = 0
    embedded: int = 0
    reused: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[IngestError] = field(default_factory=list)
    seconds: float = 0.0
    embed_seconds: float = 0.0
    validation: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["errors"] = [{"file": e.file, "line": e.line, "message": e.message} for e in self.errors]
        return d


def row_hash(model: str, text: str) -> str:
    return hashlib.sha1(f"{model}\0{text}".encode()).hexdigest()[:20]


def build_index(
    sources: Path | Sequence[Path],
    index_dir: Path,
    *,
    embedder: Embedder,
    extra_phrasings: Iterable[Phrasing | tuple[str, str, bool]] = (),
    articles: Sequence[Article] | None = None,
    progress: bool = True,
    calibrate: bool = True,
    seed: int = 0,
    publish: bool = True,
) -> BuildReport:
    """Build a new index version from ``sources`` into ``index_dir`` and publish it atomically.

    Unchanged rows reuse the vectors of the current version (content hash), so a re-ingest only
    embeds what changed. Sources that fail to parse are reported in ``BuildReport.errors`` with
    file and line; the rest is indexed. ``extra_phrasings`` are agents' learned phrasings (from
    the database), re-applied on every build. Searchers keep serving the old version until
    they call ``reload_if_stale``.

    Example::

        report = build_index(Path("kb/sample"), Path("var/index"), embedder=Embedder.load())
        print(report.version, report.articles, [str(e) for e in report.errors])
    """
    t0 = time.perf_counter()
    if articles is None:
        arts, errors = read_sources(sources)
    else:
        arts, errors = list(articles), []
    version, path = storage.new_version_dir(index_dir)
    report = BuildReport(version=version, path=path, errors=errors)
    by_id = {a.id: i for i, a in enumerate(arts)}

    # rows: passages (with title as context), questions, agents' phrasings
    rows: list[dict[str, Any]] = []
    art_records: list[dict[str, Any]] = []
    for ai, a in enumerate(arts):
        passages = chunk(a.body)
        art_records.append(
            {
                "id": a.id,
                "title": a.title,
                "url": a.url,
                "tags": a.tags,
                "source": a.source,
                "hash": a.content_hash(),
                "passages": [{"heading": p.heading, "text": p.text} for p in passages],
            }
        )
        seen: set[str] = set()
        for pi, p in enumerate(passages):
            rows.append({"article": ai, "kind": "passage", "text": p.embed_text(a.title), "passage": pi})
        for q in a.questions:
            if q not in seen:
                seen.add(q)
                rows.append({"article": ai, "kind": "question", "text": q, "passage": -1})
        if not passages and not a.questions:
            rows.append({"article": ai, "kind": "passage", "text": a.title, "passage": -1})
    for ph in extra_phrasings:
        ph = Phrasing(*ph)
        if ph.article_id not in by_id:
            report.errors.append(
                IngestError("<database>", None, f"learned phrasing for unknown article {ph.article_id!r}")
            )
            continue
        kind = "negative" if ph.negative else "learned"
        rows.append({"article": by_id[ph.article_id], "kind": kind, "text": ph.question, "passage": -1})
    for r in rows:
        r["hash"] = row_hash(embedder.name, r["text"])

    # reuse vectors of the current version
    cache: dict[str, np.ndarray] = {}
    cur = storage.current_version(index_dir)
    old_ids: dict[str, str] = {}
    if cur is not None and cur[1] != path:
        try:
            old = storage.read_files(cur[1], name=embedder.name, dim=embedder.dim)
        except Exception:  # noqa: BLE001 - an unreadable or foreign old version: embed everything
            old = None
        if old is not None:
            vecs = storage.all_vectors(old.index)
            for i, r in enumerate(old.rows):
                cache[r["hash"]] = vecs[i]
            old_ids = {a["id"]: a["hash"] for a in old.articles}
    new_ids = {a["id"]: a["hash"] for a in art_records}
    report.added = sorted(set(new_ids) - set(old_ids))
    report.removed = sorted(set(old_ids) - set(new_ids))
    report.changed = sorted(k for k in set(new_ids) & set(old_ids) if new_ids[k] != old_ids[k])

    todo = sorted({r["hash"]: r["text"] for r in rows if r["hash"] not in cache}.items())
    t_emb = time.perf_counter()
    if todo:
        from tqdm import tqdm

        step = 1024
        with tqdm(total=len(todo), desc="embedding", unit="text", disable=not progress, leave=False) as bar:
            for s in range(0, len(todo), step):
                part = todo[s : s + step]
                vecs = embedder.encode([t for _, t in part])
                for (h, _), v in zip(part, vecs, strict=True):
                    cache[h] = v
                bar.update(len(part))
    report.embed_seconds = time.perf_counter() - t_emb
    report.embedded = len(todo)
    report.reused = len({r["hash"] for r in rows}) - len(todo)

    d = embedder.dim
    V = (
        np.stack([cache[r["hash"]] for r in rows]).astype(np.float32)
        if rows
        else np.zeros((0, d), np.float32)
    )
    art_of = np.array([r["article"] for r in rows], dtype=np.int64)
    sign = np.array([-1 if r["kind"] == "negative" else 1 for r in rows], dtype=np.int64)
    texts = [r["text"] for r in rows]

    head_w = head_b = None
    lexhead = None
    positive = sign > 0
    # the heads pay off for intent-like KBs (several phrasings per article), not for passages alone
    is_question = np.array([r["kind"] in ("question", "learned") for r in rows], dtype=bool)
    if wants_heads(len(arts), int(is_question.sum()), int(positive.sum())):
        head_w, head_b = fit_head(V[positive], art_of[positive], len(arts))
        lexhead = LexHead.fit(
            [t for t, p in zip(texts, positive, strict=True) if p], art_of[positive], len(arts)
        )

    weights = Weights()
    calibrator = Calibrator()
    threshold = 0.5
    if calibrate:
        got = validate(
            V, art_of, sign, texts, is_question, n_articles=len(arts), seed=seed, has_head=head_w is not None
        )
        if got is not None:
            weights, calibrator, threshold, report.validation = got

    index = storage.make_faiss(V)
    import faiss

    faiss.write_index(index, str(path / "index.faiss"))
    pidx = [i for i, r in enumerate(rows) if r["kind"] == "passage" and r["passage"] >= 0]
    np.save(path / "passages.npy", V[pidx] if pidx else np.zeros((0, d), np.float32), allow_pickle=False)
    if head_w is not None and head_b is not None:
        np.save(path / "head_w.npy", head_w, allow_pickle=False)
        np.save(path / "head_b.npy", head_b, allow_pickle=False)
    if lexhead is not None:
        lexhead.save(path / "lexhead")
    Lexical.build(texts).save(path / "bm25")
    storage.write_jsonl(
        path / "chunks.jsonl", [{**r, "article": art_records[r["article"]]["id"]} for r in rows]
    )
    storage.write_jsonl(path / "articles.jsonl", art_records)
    params = {
        "format": storage.FORMAT,
        "model": embedder.name,
        "dim": d,
        "normalized": True,
        "metric": "inner_product",
        "version": version,
        "index_type": type(index).__name__,
        "n_rows": len(rows),
        "n_articles": len(arts),
        "weights": weights.as_dict(),
        "calibrator": asdict(calibrator),
        "threshold": threshold,
        "validation": report.validation,
        "created_at": time.time(),
    }
    (path / "params.json").write_text(json.dumps(params, indent=2))
    if publish:
        storage.publish(index_dir, version)
    report.articles = len(arts)
    report.rows = len(rows)
    report.seconds = time.perf_counter() - t0
    return report


def wants_heads(n_articles: int, n_phrasings: int, n_positive: int) -> bool:
    """Whether to fit the article classifiers: they pay off for intent-like KBs (several
    phrasings per article), not for passages alone, and are capped in size."""
    return (
        2 <= n_articles <= HEAD_MAX_ARTICLES and 3 * n_articles <= n_phrasings and n_positive <= HEAD_MAX_ROWS
    )


def fit_head(
    X: np.ndarray, y: np.ndarray, n_classes: int, *, c: float = 30.0
) -> tuple[np.ndarray, np.ndarray]:
    """A multinomial logistic regression over the embedding (one weight row per article), fitted
    with full-batch L-BFGS in torch: the objective of scikit-learn's ``LogisticRegression(C=c)``
    at a fraction of its time."""
    import torch

    W = np.zeros((n_classes, X.shape[1]), dtype=np.float32)
    b = np.full(n_classes, -1e4, dtype=np.float32)  # articles with no rows are never predicted
    classes = np.unique(y)
    if len(classes) < 2:
        b[classes] = 0.0
        return W, b
    remap = np.full(n_classes, -1, dtype=np.int64)
    remap[classes] = np.arange(len(classes))
    xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    yt = torch.from_numpy(remap[y])
    w = torch.zeros((len(classes), X.shape[1]), requires_grad=True)
    bias = torch.zeros(len(classes), requires_grad=True)
    lam = 1.0 / (c * len(X))
    opt = torch.optim.LBFGS(
        [w, bias], lr=1.0, max_iter=150, tolerance_grad=1e-5, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w.T + bias, yt) + 0.5 * lam * (w * w).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]
    W[classes] = w.detach().numpy()
    b[classes] = bias.detach().numpy()
    return W, b


def dense_neighbours(
    Q: np.ndarray, V: np.ndarray, art_of: np.ndarray, sign: np.ndarray, k: int, exclude: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact top-k rows by cosine, optionally hiding each query's ``exclude`` article."""
    k = min(k, len(V))
    out_a = np.zeros((len(Q), k), np.int64)
    out_s = np.zeros((len(Q), k), np.float32)
    out_g = np.zeros((len(Q), k), np.int64)
    for s in range(0, len(Q), 256):
        S = Q[s : s + 256] @ V.T
        if exclude is not None:
            S[art_of[None, :] == exclude[s : s + 256, None]] = -np.inf
        top = np.argpartition(-S, k - 1, axis=1)[:, :k]
        ts = np.take_along_axis(S, top, 1)
        o = np.argsort(-ts, 1)
        top = np.take_along_axis(top, o, 1)
        out_a[s : s + 256] = art_of[top]
        out_s[s : s + 256] = np.take_along_axis(ts, o, 1)
        out_g[s : s + 256] = sign[top]
    bad = ~np.isfinite(out_s)
    out_a[bad] = -1
    out_s[bad] = 0.0
    return out_a, out_s, out_g


def validate(
    V: np.ndarray,
    art_of: np.ndarray,
    sign: np.ndarray,
    texts: list[str],
    is_question: np.ndarray,
    *,
    n_articles: int,
    seed: int,
    has_head: bool,
) -> tuple[Weights, Calibrator, float, dict[str, Any]] | None:
    """Leave-phrasing-out and leave-articles-out on the KB's own questions.

    Hold out ~10 % of each article's questions and search them against the rest (in scope: is
    the top article right?). In each of OOS_FOLDS folds, hold out a different ~15 % of the
    articles entirely and search their questions against a KB rebuilt without them (a stand-in
    for questions the KB cannot answer, often with a near-twin article left in). Tune the fusion
    weights for top-1 on the first; fit the confidence calibrator and the answer threshold on both.
    """
    rng = np.random.default_rng(seed)
    q_rows = np.flatnonzero(is_question)  # questions and learned phrasings (not passages, negatives)
    val: list[int] = []
    for a in range(n_articles):
        mine = q_rows[art_of[q_rows] == a]
        if len(mine) >= 2:
            mine = rng.permutation(mine)
            val.extend(mine[: max(1, int(round(len(mine) * VAL_FRACTION)))].tolist())
    if len(val) < 20 or n_articles < 3:
        return None
    val_arr = np.array(val, dtype=np.int64)
    if len(val_arr) > VAL_MAX:
        val_arr = rng.choice(val_arr, size=VAL_MAX, replace=False)
    is_val = np.zeros(len(is_question), bool)
    is_val[val_arr] = True
    tr = ~is_val
    Q, y = V[val_arr], art_of[val_arr]
    in_sig = _signals_for(
        Q, [texts[i] for i in val_arr], V, art_of, sign, texts, tr, n_articles=n_articles, has_head=has_head
    )

    # out-of-scope stand-ins: in each of OOS_FOLDS folds, hold out a different ~OOS_SHARE of the
    # articles entirely (rows, lexical index and both heads are built without them) and search
    # their questions, which the smaller KB cannot answer
    arts_with_q = rng.permutation(np.unique(art_of[q_rows]))
    n_out = min(max(2, int(round(OOS_SHARE * len(arts_with_q)))), len(arts_with_q) - 1)
    n_folds = max(1, min(OOS_FOLDS, len(arts_with_q) // n_out))
    oos_sigs = []
    for fold in range(n_folds):
        held = arts_with_q[fold * n_out : (fold + 1) * n_out]
        out_rows: list[int] = []
        for a in held:
            mine = q_rows[art_of[q_rows] == a]
            out_rows.extend(rng.permutation(mine)[:OOS_PER_ARTICLE].tolist())
        oos_arr = np.array(out_rows, dtype=np.int64)
        keep = tr & ~np.isin(art_of, held)
        oos_sigs.append(
            _signals_for(
                V[oos_arr],
                [texts[i] for i in oos_arr],
                V,
                art_of,
                sign,
                texts,
                keep,
                n_articles=n_articles,
                has_head=has_head,
            )
        )
    base = Weights()

    s_in = in_sig(base)
    weights, top1 = tune_weights(s_in, y, base=base, has_head=has_head, has_lex=has_head)
    top_in, f_in = s_in.features(s_in.fused(weights))
    correct = top_in == y
    f_oos = np.concatenate([s.features(s.fused(weights))[1] for s in (make(base) for make in oos_sigs)])
    feats = np.concatenate([f_in, f_oos])
    labels = np.concatenate([correct, np.zeros(len(f_oos), bool)]).astype(int)
    # OOS stand-ins weigh half the in-scope ones in total: the calibrated probability assumes
    # about a third of the traffic the bot sees is not answerable from the KB.
    sw = np.concatenate([np.ones(len(f_in)), np.full(len(f_oos), 0.5 * len(f_in) / max(1, len(f_oos)))])
    cal = Calibrator.fit(feats, labels, sw)
    c_in, c_oos = cal.predict(f_in), cal.predict(f_oos)
    thr = best_threshold(c_in, correct, c_oos)
    report = {
        "n": int(len(val_arr)),
        "top1": round(top1, 4),
        "threshold": round(thr, 4),
        "in_scope_accuracy": round(float(((c_in >= thr) & correct).mean()), 4),
        "oos_recall": round(float((c_oos < thr).mean()), 4),
        "in_scope_accuracy_at_0.6": round(float(((c_in >= 0.6) & correct).mean()), 4),
        "oos_recall_at_0.6": round(float((c_oos < 0.6).mean()), 4),
        "ece": round(ece(np.concatenate([c_in, c_oos]), labels, sw), 4),
    }
    return weights, cal, thr, report


def _signals_for(
    Q: np.ndarray,
    qtexts: list[str],
    V: np.ndarray,
    art_of: np.ndarray,
    sign: np.ndarray,
    texts: list[str],
    rows: np.ndarray,
    *,
    n_articles: int,
    has_head: bool,
) -> Callable[[Weights], Signals]:
    """Signals of queries Q against a KB made of ``rows`` only (bool mask), heads refitted on it."""
    Vt, at, st = V[rows], art_of[rows], sign[rows]
    kept_texts = [t for t, k in zip(texts, rows, strict=True) if k]
    head_logits = lex_logits = None
    if has_head:
        pos = st > 0
        W, b = fit_head(Vt[pos], at[pos], n_articles)
        head_logits = Q @ W.T + b
        lh = LexHead.fit([t for t, p in zip(kept_texts, pos, strict=True) if p], at[pos], n_articles)
        lex_logits = lh.decision(qtexts)
    lexical = Lexical.build(kept_texts)
    lid, lsc, tokens = lexical.search_with_tokens(qtexts, LEX_K)
    lart = np.where(lid >= 0, at[np.maximum(lid, 0)], -1)
    cover = Coverage.from_lexical(lexical, at, st, n_articles)

    def coverage(top: np.ndarray) -> np.ndarray:
        return cover.features(tokens, top)

    na, ns, ng = dense_neighbours(Q, Vt, at, st, DENSE_K, None)

    def make(base: Weights) -> Signals:
        return signals(
            n_articles=n_articles,
            nb_article=na,
            nb_sim=ns,
            nb_sign=ng,
            lex_article=lart,
            lex_score=lsc,
            head_logits=head_logits,
            knn_k=base.knn_k,
            knn_t=base.knn_t,
            lex_logits=lex_logits,
            lex_t=base.lex_t,
            coverage=coverage,
        )

    return make


def ece(p: np.ndarray, y: np.ndarray, w: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error (weighted)."""
    total = w.sum()
    err = 0.0
    for lo in np.linspace(0, 1, bins, endpoint=False):
        m = (p >= lo) & (p < lo + 1 / bins) if lo + 1 / bins < 1 else (p >= lo)
        if m.any():
            err += w[m].sum() / total * abs(np.average(p[m], weights=w[m]) - np.average(y[m], weights=w[m]))
    return float(err)
