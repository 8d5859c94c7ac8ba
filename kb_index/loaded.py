"""One published index version loaded into memory (`State`, built by `load_state`), and the
phrasings agents added since it was built (`Learned`). `kb_index.index.KnowledgeBase` searches them."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kb_index import storage
from kb_index.build import identity
from kb_index.coverage import Coverage
from kb_index.embed import Embedder
from kb_index.lexhead import LexHead
from kb_index.lexical import Lexical
from kb_index.scoring import COVERAGE_FEATURES, Calibrator, Weights


@dataclass
class State:
    """One loaded version (immutable once built; learned rows live in ``Learned``)."""

    version: int
    path: Path
    params: dict[str, Any]
    article_ids: list[str]
    articles: list[dict[str, Any]]
    index: Any
    row_article: np.ndarray
    row_sign: np.ndarray
    row_passage: np.ndarray
    row_question: np.ndarray  # bool: a question or learned phrasing (not a passage or negative)
    passages: np.ndarray  # vectors of passage rows
    passage_article: np.ndarray
    passage_no: np.ndarray
    lexical: Lexical
    coverage: Coverage | None  # only when the calibrator uses it
    head_w: np.ndarray | None
    head_b: np.ndarray | None
    lexhead: LexHead | None
    row_text: list[str]
    weights: Weights
    calibrator: Calibrator
    threshold: float
    phrasings: set[tuple[str, str, bool]]  # (article id, text, negative) of question/learned rows


class Learned:
    """Phrasings agents added since the version was built (searched by brute force)."""

    def __init__(self, dim: int) -> None:
        self.vectors = np.zeros((0, dim), np.float32)
        self.article = np.zeros(0, np.int64)
        self.sign = np.zeros(0, np.int64)
        self.items: list[tuple[str, str, bool]] = []  # (article id, text, negative)
        self._keys: set[tuple[str, str, bool]] = set()
        self.lock = threading.Lock()

    def add(self, vec: np.ndarray, article: int, negative: bool, text: str, article_id: str) -> None:
        with self.lock:
            key = (article_id, text, negative)
            if key in self._keys:
                return
            self._keys.add(key)
            self.items.append(key)
            self.vectors = np.vstack([self.vectors, vec[None, :]])
            self.article = np.append(self.article, article)
            self.sign = np.append(self.sign, -1 if negative else 1)


def coverage_for(
    calibrator: Calibrator, lexical: Lexical, row_article: np.ndarray, row_sign: np.ndarray, n_articles: int
) -> Coverage | None:
    """The lexical-coverage table, when ``calibrator`` reads coverage features (not for indexes
    calibrated before they existed)."""
    if not set(calibrator.features) & set(COVERAGE_FEATURES):
        return None
    return Coverage.from_lexical(lexical, row_article, row_sign, n_articles)


def load_state(path: Path, version: int, embedder: Embedder) -> State:
    f = storage.read_files(path, **identity(embedder))
    ids = [a["id"] for a in f.articles]
    pos = {a: i for i, a in enumerate(ids)}
    row_article = np.array([pos[r["article"]] for r in f.rows], dtype=np.int64)
    row_sign = np.array([-1 if r["kind"] == "negative" else 1 for r in f.rows], dtype=np.int64)
    row_passage = np.array([r["passage"] if r["kind"] == "passage" else -1 for r in f.rows], dtype=np.int64)
    pmask = row_passage >= 0
    p = f.params
    lexical = Lexical.load(path / "bm25", len(f.rows))
    calibrator = Calibrator(**p["calibrator"]) if "calibrator" in p else Calibrator()
    return State(
        version=version,
        path=path,
        params=p,
        article_ids=ids,
        articles=f.articles,
        index=f.index,
        row_article=row_article,
        row_sign=row_sign,
        row_passage=row_passage,
        row_question=np.array([r["kind"] in ("question", "learned") for r in f.rows], dtype=bool),
        passages=f.passages,
        passage_article=row_article[pmask],
        passage_no=row_passage[pmask],
        lexical=lexical,
        coverage=coverage_for(calibrator, lexical, row_article, row_sign, len(ids)),
        head_w=f.head_w,
        head_b=f.head_b,
        lexhead=LexHead.load(path / "lexhead"),
        row_text=[r["text"] for r in f.rows],
        weights=Weights(**p.get("weights", {})),
        calibrator=calibrator,
        threshold=float(p.get("threshold", 0.5)),
        phrasings={
            (r["article"], r["text"], r["kind"] == "negative")
            for r in f.rows
            if r["kind"] in ("question", "learned", "negative")
        },
    )
