"""Building an index version: read sources, chunk, embed what changed, fit the article heads
(``heads``), calibrate on a validation split of the KB's own questions (``calibrate``), write a
new version folder, swap."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from tqdm import tqdm

from kb_index import storage
from kb_index.calibrate import validate
from kb_index.chunk import chunk
from kb_index.embed import Embedder
from kb_index.errors import IngestError
from kb_index.heads import fit_head, wants_heads
from kb_index.ingest import MAX_FILE_BYTES, Article, read_sources
from kb_index.lexhead import LexHead
from kb_index.lexical import Lexical
from kb_index.scoring import Calibrator, Weights
from kb_index.types import Phrasing

POSITIVE = ("passage", "question", "learned")


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


@dataclass(frozen=True, slots=True)
class Row:
    """One vector of the index: a passage (with its title as context), a question, an agent's
    learned phrasing or a negative. ``article`` is the article's position; ``passage`` the
    passage's number within it (-1 for phrasings)."""

    article: int
    kind: str
    text: str
    passage: int
    hash: str

    def record(self, article_id: str) -> dict[str, Any]:
        """The row as written to chunks.jsonl (the article by id)."""
        return {
            "article": article_id,
            "kind": self.kind,
            "text": self.text,
            "passage": self.passage,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class ArticleRecord:
    """An article as written to articles.jsonl: what a hit shows and the content hash."""

    id: str
    title: str
    url: str | None
    tags: list[str]
    source: str
    hash: str
    passages: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class Fitted:
    """What is learnt from the vectors: heads (optional), fusion weights, calibrator, threshold."""

    head_w: np.ndarray | None
    head_b: np.ndarray | None
    lexhead: LexHead | None
    weights: Weights
    calibrator: Calibrator
    threshold: float
    validation: dict[str, Any]


def identity(embedder: Embedder) -> dict[str, Any]:
    """What an index records about the embedder that built it (``storage.check_model``)."""
    return {
        "name": embedder.name,
        "dim": embedder.dim,
        "backend": getattr(embedder, "backend", "torch"),
        "model_hash": getattr(embedder, "model_hash", ""),
        "recipe": getattr(embedder, "recipe", ""),
    }


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
    max_file_bytes: int = MAX_FILE_BYTES,
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
        arts, errors = read_sources(sources, max_bytes=max_file_bytes, progress=progress)
    else:
        arts, errors = list(articles), []
    version, path = storage.new_version_dir(index_dir)
    report = BuildReport(version=version, path=path, errors=errors)
    records, rows = collect_rows(arts, extra_phrasings, model=embedder.name, errors=report.errors)

    cache, old_ids = reusable_vectors(index_dir, path, embedder)
    new_ids = {a.id: a.hash for a in records}
    report.added = sorted(set(new_ids) - set(old_ids))
    report.removed = sorted(set(old_ids) - set(new_ids))
    report.changed = sorted(k for k in set(new_ids) & set(old_ids) if new_ids[k] != old_ids[k])

    todo = sorted({r.hash: r.text for r in rows if r.hash not in cache}.items())
    t_emb = time.perf_counter()
    embed_missing(todo, cache, embedder, progress=progress)
    report.embed_seconds = time.perf_counter() - t_emb
    report.embedded = len(todo)
    report.reused = len({r.hash for r in rows}) - len(todo)

    V = (
        np.stack([cache[r.hash] for r in rows]).astype(np.float32)
        if rows
        else np.zeros((0, embedder.dim), np.float32)
    )
    fitted = fit(V, rows, len(arts), calibrate=calibrate, seed=seed)
    report.validation = fitted.validation
    write_version(path, V, rows, records, fitted, embedder=embedder, version=version)
    if publish:
        storage.publish(index_dir, version)
    report.articles = len(arts)
    report.rows = len(rows)
    report.seconds = time.perf_counter() - t0
    return report


def collect_rows(
    arts: Sequence[Article],
    extra_phrasings: Iterable[Phrasing | tuple[str, str, bool]],
    *,
    model: str,
    errors: list[IngestError],
) -> tuple[list[ArticleRecord], list[Row]]:
    """The article records and the rows to embed: passages (title as context), questions, agents'
    phrasings (a phrasing for an unknown article is reported in ``errors``)."""
    by_id = {a.id: i for i, a in enumerate(arts)}
    rows: list[Row] = []
    records: list[ArticleRecord] = []

    def add(article: int, kind: str, text: str, passage: int) -> None:
        rows.append(Row(article, kind, text, passage, row_hash(model, text)))

    for ai, a in enumerate(arts):
        passages = chunk(a.body)
        records.append(
            ArticleRecord(
                id=a.id,
                title=a.title,
                url=a.url,
                tags=a.tags,
                source=a.source,
                hash=a.content_hash(),
                passages=[{"heading": p.heading, "text": p.text} for p in passages],
            )
        )
        seen: set[str] = set()
        for pi, p in enumerate(passages):
            add(ai, "passage", p.embed_text(a.title), pi)
        for q in a.questions:
            if q not in seen:
                seen.add(q)
                add(ai, "question", q, -1)
        if not passages and not a.questions:
            add(ai, "passage", a.title, -1)
    for ph in extra_phrasings:
        ph = Phrasing(*ph)
        if ph.article_id not in by_id:
            errors.append(
                IngestError("<database>", None, f"learned phrasing for unknown article {ph.article_id!r}")
            )
            continue
        add(by_id[ph.article_id], "negative" if ph.negative else "learned", ph.question, -1)
    return records, rows


def reusable_vectors(
    index_dir: Path, path: Path, embedder: Embedder
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Vectors of the current version by row hash, and its articles' content hashes by id (empty
    when there is none, or it was built with another model or is unreadable)."""
    cache: dict[str, np.ndarray] = {}
    old_ids: dict[str, str] = {}
    cur = storage.current_version(index_dir)
    if cur is None or cur[1] == path:
        return cache, old_ids
    try:
        old = storage.read_files(cur[1], **identity(embedder))
    except Exception:  # noqa: BLE001 - an unreadable or foreign old version: embed everything
        return cache, old_ids
    vecs = storage.all_vectors(old.index)
    for i, r in enumerate(old.rows):
        cache[r["hash"]] = vecs[i]
    old_ids = {a["id"]: a["hash"] for a in old.articles}
    return cache, old_ids


def embed_missing(
    todo: list[tuple[str, str]], cache: dict[str, np.ndarray], embedder: Embedder, *, progress: bool
) -> None:
    """Embed ``(hash, text)`` pairs into ``cache``, in steps of 1024 with a progress bar."""
    if not todo:
        return

    step = 1024
    with tqdm(total=len(todo), desc="embedding", unit="text", disable=not progress, leave=False) as bar:
        for s in range(0, len(todo), step):
            part = todo[s : s + step]
            vecs = embedder.encode([t for _, t in part])
            for (h, _), v in zip(part, vecs, strict=True):
                cache[h] = v
            bar.update(len(part))


def fit(V: np.ndarray, rows: Sequence[Row], n_articles: int, *, calibrate: bool, seed: int) -> Fitted:
    """Fit the heads when they pay off (intent-like KBs: several phrasings per article, not
    passages alone), then tune weights, calibrator and threshold on the KB's own questions."""
    art_of = np.array([r.article for r in rows], dtype=np.int64)
    sign = np.array([-1 if r.kind == "negative" else 1 for r in rows], dtype=np.int64)
    texts = [r.text for r in rows]
    positive = sign > 0
    is_question = np.array([r.kind in ("question", "learned") for r in rows], dtype=bool)
    head_w = head_b = None
    lexhead = None
    if wants_heads(n_articles, int(is_question.sum()), int(positive.sum())):
        head_w, head_b = fit_head(V[positive], art_of[positive], n_articles)
        lexhead = LexHead.fit(
            [t for t, p in zip(texts, positive, strict=True) if p], art_of[positive], n_articles
        )
    weights, calibrator, threshold = Weights(), Calibrator(), 0.5
    validation: dict[str, Any] = {}
    if calibrate:
        got = validate(
            V, art_of, sign, texts, is_question, n_articles=n_articles, seed=seed, has_head=head_w is not None
        )
        if got is not None:
            weights, calibrator, threshold, validation = got
    return Fitted(head_w, head_b, lexhead, weights, calibrator, threshold, validation)


def write_version(
    path: Path,
    V: np.ndarray,
    rows: Sequence[Row],
    records: Sequence[ArticleRecord],
    fitted: Fitted,
    *,
    embedder: Embedder,
    version: int,
) -> None:
    """Write every file of one version folder (``storage`` describes the layout)."""

    index = storage.make_faiss(V)
    faiss.write_index(index, str(path / "index.faiss"))
    pidx = [i for i, r in enumerate(rows) if r.kind == "passage" and r.passage >= 0]
    np.save(
        path / "passages.npy",
        V[pidx] if pidx else np.zeros((0, embedder.dim), np.float32),
        allow_pickle=False,
    )
    if fitted.head_w is not None and fitted.head_b is not None:
        np.save(path / "head_w.npy", fitted.head_w, allow_pickle=False)
        np.save(path / "head_b.npy", fitted.head_b, allow_pickle=False)
    if fitted.lexhead is not None:
        fitted.lexhead.save(path / "lexhead")
    Lexical.build([r.text for r in rows]).save(path / "bm25")
    storage.write_jsonl(path / "chunks.jsonl", [r.record(records[r.article].id) for r in rows])
    storage.write_jsonl(path / "articles.jsonl", [asdict(a) for a in records])
    params = {
        "format": storage.FORMAT,
        "model": embedder.name,
        "embed_backend": getattr(embedder, "backend", "torch"),
        "model_hash": getattr(embedder, "model_hash", ""),
        "embed_recipe": getattr(embedder, "recipe", ""),
        "dim": embedder.dim,
        "normalized": True,
        "metric": "inner_product",
        "version": version,
        "index_type": type(index).__name__,
        "n_rows": len(rows),
        "n_articles": len(records),
        "weights": fitted.weights.as_dict(),
        "calibrator": asdict(fitted.calibrator),
        "threshold": fitted.threshold,
        "validation": fitted.validation,
        "created_at": time.time(),
    }
    (path / "params.json").write_text(json.dumps(params, indent=2))
