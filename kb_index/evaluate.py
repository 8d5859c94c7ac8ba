"""The evaluation contract behind ``switchboard kb eval``: top-1, MRR@5, recall@5, abstention
figures at a threshold tuned only on ``--tune-on`` or the articles, and per-query latency."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from kb_index import clarify
from kb_index.index import KnowledgeBase
from kb_index.scoring import best_threshold
from kb_index.types import Hit


def read_queries(path: Path) -> list[tuple[str, str | None]]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            obj = json.loads(line)
            out.append((str(obj["text"]), obj.get("expected")))
    return out


async def run_queries(
    kb: KnowledgeBase, queries: list[tuple[str, str | None]], *, k: int = 5
) -> tuple[list[list[Hit]], list[float]]:
    """Search one query at a time (as the bot does), timing each."""
    hits, lat = [], []
    for text, _ in queries:
        t = time.perf_counter()
        hits.append(await kb.search(text, k=k))
        lat.append((time.perf_counter() - t) * 1000)
    return hits, lat


def tune_threshold(hits: list[list[Hit]], queries: list[tuple[str, str | None]], default: float) -> float:
    conf_in, correct, conf_oos = [], [], []
    for h, (_, exp) in zip(hits, queries, strict=True):
        c = h[0].confidence if h else 0.0
        if exp is None:
            conf_oos.append(c)
        else:
            conf_in.append(c)
            correct.append(bool(h) and h[0].article_id == exp)
    if not conf_oos:
        return default
    return best_threshold(np.array(conf_in), np.array(correct), np.array(conf_oos))


async def evaluate(
    kb: KnowledgeBase,
    queries: list[tuple[str, str | None]],
    *,
    tune_on: list[tuple[str, str | None]] | None = None,
) -> dict[str, Any]:
    hits, lat = await run_queries(kb, queries)
    thr, source = kb.threshold, "articles"
    if tune_on is not None:
        t_hits, _ = await run_queries(kb, tune_on)
        thr, source = tune_threshold(t_hits, tune_on, kb.threshold), "tune-on"
    out = score(hits, queries, thr, with_threshold=tune_on is not None)
    if "threshold" in out:
        out["threshold_source"] = source
    out["latency_ms"] = {
        "p50": round(float(np.percentile(lat, 50)), 2),
        "p99": round(float(np.percentile(lat, 99)), 2),
    }
    return out


def score(
    hits: list[list[Hit]], queries: list[tuple[str, str | None]], thr: float, *, with_threshold: bool = False
) -> dict[str, Any]:
    """The contract's figures for ``hits`` (one list per query): ranking figures over the in-scope
    queries; abstention figures at ``thr`` when any query expects null (or ``with_threshold``)."""
    out: dict[str, Any] = {"n": len(queries)}
    ins = [(h, e) for h, (_, e) in zip(hits, queries, strict=True) if e is not None]
    rr, top1, rec = [], [], []
    for h, e in ins:
        ids = [x.article_id for x in h[:5]]
        top1.append(bool(ids) and ids[0] == e)
        rec.append(e in ids)
        rr.append(1.0 / (ids.index(e) + 1) if e in ids else 0.0)
    out["top1"] = round(float(np.mean(top1)), 4) if ins else None
    out["mrr@5"] = round(float(np.mean(rr)), 4) if ins else None
    out["recall@5"] = round(float(np.mean(rec)), 4) if ins else None
    if any(e is None for _, e in queries) or with_threshold:
        conf = np.array([h[0].confidence if h else 0.0 for h in hits])
        expected = [e for _, e in queries]
        is_oos = np.array([e is None for e in expected])
        right = np.array([bool(h) and h[0].article_id == e for h, e in zip(hits, expected, strict=True)])
        answered = conf >= thr
        out["threshold"] = round(float(thr), 4)
        out["in_scope_accuracy"] = (
            round(float((answered & right)[~is_oos].mean()), 4) if (~is_oos).any() else None
        )
        out["oos_recall"] = round(float((~answered)[is_oos].mean()), 4) if is_oos.any() else None
        abstained = ~answered
        out["oos_precision"] = (
            round(float(is_oos[abstained].mean()), 4) if abstained.any() and is_oos.any() else None
        )
        from sklearn.metrics import roc_auc_score  # noqa: PLC0415 heavy: scikit-learn loads only for eval

        # with out-of-scope queries: how well confidence separates in-scope from out-of-scope;
        # without: how well it separates right top answers from wrong ones
        target = ~is_oos if is_oos.any() and (~is_oos).any() else right
        out["auroc"] = (
            round(float(roc_auc_score(target, conf)), 4) if 0 < target.sum() < len(target) else None
        )
    return out


# --- conversations: rows with "history" -----------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One eval row. ``history`` holds the customer's earlier turns (oldest first); ``kind`` is
    ``"single"`` (no history), ``"followup"`` (needs the earlier turns) or ``"switch"`` (changes
    the subject: must be answered as if alone); ``last_article`` is the article the bot answered
    last, when the row says so (otherwise the eval derives it from the last earlier turn)."""

    text: str
    expected: str | None
    history: tuple[str, ...] = ()
    last_article: str | None = None
    kind: str = "single"


def read_cases(path: Path) -> list[Case]:
    """Eval rows with their conversation: ``{"text", "expected", "history"?, "last_article"?,
    "kind"?}``; a row with history and no kind is a follow-up."""
    out = []
    for no, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        obj = json.loads(line)
        history = obj.get("history") or []
        if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
            raise ValueError(f"{path}:{no}: history must be a list of strings")
        kind = str(obj.get("kind") or ("followup" if history else "single"))
        if kind not in KINDS:
            raise ValueError(f"{path}:{no}: kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if kind != "single" and not history:
            raise ValueError(f"{path}:{no}: a {kind} row needs a history")
        out.append(
            Case(str(obj["text"]), obj.get("expected"), tuple(history), obj.get("last_article"), kind)
        )
    return out


KINDS = ("single", "followup", "switch")


async def last_answered(kb: Searchlike, history: tuple[str, ...], threshold: float) -> str | None:
    """What the bot would have answered to the last earlier turn (in its own context), if anything."""
    if not history:
        return None
    prev = await last_answered(kb, history[:-1], threshold) if len(history) > 1 else None
    hits = await kb.search(history[-1], history=history[:-1], last_article=prev, k=1)
    return hits[0].article_id if hits and hits[0].confidence >= threshold else None


async def run_cases(kb: Searchlike, cases: list[Case], threshold: float, *, k: int = 5) -> list[Outcome]:
    """Each case searched in its conversation, and alone (what a topic switch must match)."""
    out = []
    for c in cases:
        last = c.last_article
        if last is None and c.history:
            last = await last_answered(kb, c.history, threshold)
        t = time.perf_counter()
        hits = await kb.search(c.text, history=c.history, last_article=last, k=k)
        ms = (time.perf_counter() - t) * 1000
        alone = await kb.search(c.text, k=k) if c.history else hits
        out.append(Outcome(c, hits, alone, ms))
    return out


@dataclass(frozen=True)
class Outcome:
    case: Case
    hits: list[Hit]
    alone: list[Hit]
    ms: float


def _decision(hits: list[Hit], threshold: float) -> str | None:
    """The article the bot sends at ``threshold``, or None (handed to people)."""
    return hits[0].article_id if hits and hits[0].confidence >= threshold else None


def score_turns(outcomes: list[Outcome], threshold: float) -> dict[str, Any]:
    """Figures per kind at the serving ``threshold``: top-1, answered right / wrong / handed off
    (shares of the kind's cases) and, for topic switches, the share answered as if alone."""
    out: dict[str, Any] = {"threshold": round(threshold, 4)}
    for kind in KINDS:
        mine = [o for o in outcomes if o.case.kind == kind and o.case.expected is not None]
        if not mine:
            continue
        sent = [_decision(o.hits, threshold) for o in mine]
        right = [s is not None and s == o.case.expected for s, o in zip(sent, mine, strict=True)]
        wrong = [s is not None and s != o.case.expected for s, o in zip(sent, mine, strict=True)]
        fig: dict[str, Any] = {
            "n": len(mine),
            "top1": _share(bool(o.hits) and o.hits[0].article_id == o.case.expected for o in mine),
            "answered_right": _share(right),
            "answered_wrong": _share(wrong),
            "handed_off": _share(s is None for s in sent),
        }
        asked = [bool(clarify.options(o.hits, threshold=threshold)) for o in mine]
        fig["with_clarify"] = {
            "answered_right": _share(r and not q for r, q in zip(right, asked, strict=True)),
            "answered_wrong": _share(w and not q for w, q in zip(wrong, asked, strict=True)),
            "clarified": _share(asked),
            "clarified_with_right": _share(
                q and o.case.expected in {h.article_id for h in o.hits[:2]}
                for q, o in zip(asked, mine, strict=True)
            ),
            "handed_off": _share(s is None and not q for s, q in zip(sent, asked, strict=True)),
        }
        if kind == "switch":
            fig["as_alone"] = _share(
                s == _decision(o.alone, threshold) for s, o in zip(sent, mine, strict=True)
            )
        if kind != "single":
            fig["alone_answered_right"] = _share(_decision(o.alone, threshold) == o.case.expected for o in mine)
        fig["latency_ms_p50"] = round(float(np.percentile([o.ms for o in mine], 50)), 2)
        out[kind] = fig
    oos = [o for o in outcomes if o.case.expected is None and o.case.history]
    if oos:  # out-of-scope messages in a conversation: any answer is wrong, and so is "A or B?"
        answered = [_decision(o.hits, threshold) is not None for o in oos]
        offered = [bool(clarify.options(o.hits, threshold=threshold)) for o in oos]  # as the engine: first
        out["out_of_scope"] = {
            "n": len(oos),
            "answered": _share(answered),
            "alone_answered": _share(_decision(o.alone, threshold) is not None for o in oos),
            "with_clarify": {
                "answered": _share(s and not q for s, q in zip(answered, offered, strict=True)),
                "clarified": _share(offered),
                "handed_off": _share(not s and not q for s, q in zip(answered, offered, strict=True)),
            },
        }
    return out


def _share(flags: Any) -> float:
    v = list(flags)
    return round(float(np.mean(v)), 4) if v else 0.0


async def evaluate_turns(kb: Searchlike, cases: list[Case], *, threshold: float) -> dict[str, Any]:
    """``score_turns`` for ``cases`` searched through ``kb``."""
    return score_turns(await run_cases(kb, cases, threshold), threshold)


class Searchlike(Protocol):
    async def search(
        self, query: str, *, history: Sequence[str] = (), last_article: str | None = None, k: int = 3
    ) -> list[Hit]: ...


async def evaluate_all(
    kb: KnowledgeBase,
    cases: list[Case],
    *,
    serving_threshold: float,
    tune_on: list[tuple[str, str | None]] | None = None,
) -> dict[str, Any]:
    """``switchboard kb eval``: the single-turn figures (``evaluate``) over rows without history,
    and, when some rows have one, ``"conversation"``: follow-up and topic-switch figures at the
    serving threshold (``score_turns``)."""
    singles = [(c.text, c.expected) for c in cases if c.kind == "single"]
    out: dict[str, Any] = await evaluate(kb, singles, tune_on=tune_on) if singles else {"n": 0}
    turns = [c for c in cases if c.kind != "single"]
    if turns:
        out["conversation"] = await evaluate_turns(kb, turns, threshold=serving_threshold)
    return out
