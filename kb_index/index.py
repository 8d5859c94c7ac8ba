"""Loading an index version and searching it: ``KnowledgeBase`` implements ``types.Searcher``."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from kb_index import followup, storage
from kb_index.calibrate import DENSE_K, LEX_K, validate
from kb_index.embed import Batcher, Embedder
from kb_index.errors import IndexNotFoundError, UnknownArticleError
from kb_index.heads import fit_head, wants_heads
from kb_index.lexhead import LexHead
from kb_index.loaded import Learned, State, coverage_for, load_state
from kb_index.scoring import Signals, signals
from kb_index.types import Hit

_LEXICAL_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="kb-lexical")
ANSWER_MAX = 600
REFIT_MIN = 50  # learned phrasings before the article head is refitted in the background
REFIT_FRACTION = 0.1  # ... or this share of the version's rows, whichever is larger
SNIPPET_MAX = 160
FOLLOW_UP = re.compile(
    r"^\s*(and|or|but|also|what about|how about|same|then|so|what if|for|in|on|with|without|if)\b", re.I
)


def is_follow_up(query: str) -> bool:
    """A short or elliptical turn that only makes sense with the previous one."""
    words = re.findall(r"\w+", query)
    return len(words) <= 4 or bool(FOLLOW_UP.match(query))


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(". "), cut.rfind("! "), cut.rfind("? "), cut.rfind("\n"))
    if end >= limit // 2:
        return cut[: end + 1].rstrip()
    return cut[: cut.rfind(" ") if " " in cut else limit].rstrip() + "…"


# lexical articles, BM25 scores, lexical head, query tokens (for coverage)
Lex = tuple[np.ndarray, np.ndarray, np.ndarray | None, list[tuple[list[int], int]]]


class KnowledgeBase:
    """Hybrid search over a published index version, with calibrated confidence.

    Example::

        kb = KnowledgeBase.open(Path("var/index"), embedder=Embedder.load())
        hits = await kb.search("and for international orders?", history=["how long is delivery?"])
        if hits and hits[0].confidence >= 0.6:
            print(hits[0].answer)
    """

    def __init__(self, index_dir: Path, state: State, embedder: Embedder) -> None:
        self.index_dir = index_dir
        self.embedder = embedder
        self._state = state
        self._learned = Learned(embedder.dim)
        self._batcher = Batcher.for_embedder(embedder)
        self._searches: Batcher[tuple[str, int], list[Hit]] = Batcher(self._search_batch)
        self._followup = followup.Model.load()
        self._head_fitted_on = 0
        self._refit: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()
        self._refit_lock = asyncio.Lock()

    @classmethod
    def open(cls, index_dir: Path, *, embedder: Embedder) -> KnowledgeBase:
        """Load the published version in ``index_dir``; raises IndexNotFoundError or IndexMismatchError."""
        cur = storage.current_version(Path(index_dir))
        if cur is None:
            raise IndexNotFoundError(Path(index_dir))
        # one query at a time is searched per call: OpenMP threads only add overhead there
        faiss.omp_set_num_threads(1)
        return cls(Path(index_dir), load_state(cur[1], cur[0], embedder), embedder)

    @property
    def version(self) -> int:
        return self._state.version

    @property
    def threshold(self) -> float:
        """The answer threshold chosen on the KB's own validation split at build time."""
        return self._state.threshold

    @property
    def params(self) -> dict[str, Any]:
        return self._state.params

    def status(self) -> dict[str, Any]:
        """The loaded version, what built it and its calibrated threshold (for /healthz, the CLI)."""
        st = self._state
        p = st.params
        return {
            "version": st.version,
            "model": p.get("model"),
            "embed_backend": p.get("embed_backend", "torch"),
            "model_hash": str(p.get("model_hash", ""))[:12],
            "index_type": p.get("index_type"),
            "rows": int(st.index.ntotal) + len(self._learned.article),
            "articles": len(st.article_ids),
            "calibrated_threshold": round(st.threshold, 4),
        }

    def article_ids(self) -> list[str]:
        return list(self._state.article_ids)

    # --- search --------------------------------------------------------------------------------

    async def search(
        self, query: str, *, history: Sequence[str] = (), last_article: str | None = None, k: int = 3
    ) -> list[Hit]:
        """Top ``k`` articles for ``query``, in its conversation when there is one (``history``: the
        customer's earlier turns, oldest first; ``last_article``: what the bot answered last):
        ``kb_index.followup`` searches it alone and with the previous turn and ranks by its model."""
        query = query.strip()
        if not query:
            return []
        if not history:
            return await self._searches.submit((query, k))
        return await followup.search(
            self._search_text,
            query,
            history=history,
            last_article=last_article,
            model=self._followup,
            k=k,
            unknown=self.unknown_share(query),
        )

    def unknown_share(self, text: str) -> float:
        """The share of ``text``'s words no row of the published version uses (an off-topic sign for
        the follow-up model; agents' learned phrasings are not counted)."""
        return self._state.lexical.unknown_share(text)

    async def _search_text(self, text: str, k: int) -> list[Hit]:
        return await self.search_text(text, k=k)

    async def search_text(self, text: str, *, k: int = 3) -> list[Hit]:
        """``text`` searched as it is (no conversation)."""
        return await self._searches.submit((text.strip(), k)) if text.strip() else []

    def _search_batch(self, items: list[tuple[str, int]]) -> list[list[Hit]]:
        """One batch of concurrent searches (in a worker thread): the lexical half runs on a second
        thread while the batch is embedded once, then everything is scored together."""
        st = self._state
        texts = [t for t, _ in items]
        lexical = _LEXICAL_POOL.submit(self._lexical, st, texts)
        try:
            Q = self.embedder.encode(texts)
        finally:
            lex = lexical.result()
        hits = self.search_vectors(Q, texts, max(k for _, k in items), st=st, lex=lex)
        return [h[:k] for h, (_, k) in zip(hits, items, strict=True)]

    async def search_many(self, queries: Sequence[str], *, k: int = 3) -> list[list[Hit]]:
        """Batch search (evaluation, benchmarks): one embedding pass, then vectorised scoring."""
        vecs = await asyncio.to_thread(self.embedder.encode, list(queries))
        return await asyncio.to_thread(self.search_vectors, vecs, list(queries), k)

    def search_vectors(
        self, Q: np.ndarray, texts: list[str], k: int, *, st: State | None = None, lex: Lex | None = None
    ) -> list[list[Hit]]:
        """Score already-embedded queries (blocking; ``search`` calls it in a thread)."""
        st = st or self._state
        sig = self._signals(st, Q, texts, lex or self._lexical(st, texts))
        fused = sig.fused(st.weights)
        _, feats = sig.features(fused)
        conf_top = st.calibrator.predict(feats)
        out: list[list[Hit]] = []
        n_art = len(st.article_ids)
        for i in range(len(texts)):
            order = np.argsort(-fused[i])[: min(k, n_art)]
            hits = []
            for rank, a in enumerate(order):
                if rank == 0:
                    conf = float(conf_top[i])
                else:  # runners-up: a share of the leftover probability, never above the top hit
                    share = _softmax_share(fused[i], order, rank)
                    conf = float(min(conf_top[i], (1 - conf_top[i]) * share))
                hits.append(self._hit(st, int(a), Q[i], float(fused[i, a]), conf))
            out.append(hits)
        return out

    def _lexical(self, st: State, texts: list[str]) -> Lex:
        lid, lsc, tokens = st.lexical.search_with_tokens(texts, LEX_K)
        lart = np.where(lid >= 0, st.row_article[np.maximum(lid, 0)], -1)
        lsc = np.where(lid >= 0, lsc, 0.0)
        # agents' negatives never count as lexical support
        lart = np.where((lid >= 0) & (st.row_sign[np.maximum(lid, 0)] < 0), -1, lart)
        lexh = st.lexhead.decision(texts) if st.lexhead is not None and st.weights.lex > 0 else None
        return lart, lsc, lexh, tokens

    def _signals(self, st: State, Q: np.ndarray, texts: list[str], lex: Lex) -> Signals:
        n = st.index.ntotal
        k = min(DENSE_K, n)
        if k:
            dist, ids = st.index.search(np.ascontiguousarray(Q, dtype=np.float32), k)
        else:
            dist, ids = np.zeros((len(Q), 0), np.float32), np.zeros((len(Q), 0), np.int64)
        valid = ids >= 0
        na = np.where(valid, st.row_article[np.maximum(ids, 0)], -1)
        ng = np.where(valid, st.row_sign[np.maximum(ids, 0)], 1)
        ns = np.where(valid, dist, 0.0)
        lv = self._learned
        if len(lv.article):
            with lv.lock:
                LV, LA, LS = lv.vectors, lv.article, lv.sign
            S = Q @ LV.T
            na = np.concatenate([na, np.repeat(LA[None, :], len(Q), 0)], 1)
            ns = np.concatenate([ns, S], 1)
            ng = np.concatenate([ng, np.repeat(LS[None, :], len(Q), 0)], 1)
            order = np.argsort(-np.where(na >= 0, ns, -np.inf), 1)[:, : max(k, DENSE_K)]
            na, ns, ng = (np.take_along_axis(x, order, 1) for x in (na, ns, ng))
        lart, lsc, lexh, tokens = lex
        head = Q @ st.head_w.T + st.head_b if st.head_w is not None and st.head_b is not None else None
        return signals(
            n_articles=len(st.article_ids),
            nb_article=na,
            nb_sim=ns,
            nb_sign=ng,
            lex_article=lart,
            lex_score=lsc,
            head_logits=head,
            knn_k=st.weights.knn_k,
            knn_t=st.weights.knn_t,
            lex_logits=lexh,
            lex_t=st.weights.lex_t,
            coverage=partial(st.coverage.features, tokens) if st.coverage is not None else None,
        )

    def _hit(self, st: State, a: int, q: np.ndarray, score: float, conf: float) -> Hit:
        art = st.articles[a]
        passages = art["passages"]
        if passages:
            mine = np.where(st.passage_article == a)[0]
            best = int(st.passage_no[mine[np.argmax(st.passages[mine] @ q)]]) if len(mine) else 0
            p = passages[best]
            answer = p["text"]
            if p["heading"] and len(passages) > 1 and p["heading"] != art["title"]:
                answer = f"{p['heading']}: {answer}" if len(p["text"]) < 80 else answer
        else:
            answer = art["title"]
        answer = shorten(answer, ANSWER_MAX)
        snippet = shorten(" ".join(answer.split()), SNIPPET_MAX)
        return Hit(
            article_id=art["id"],
            title=art["title"],
            snippet=snippet,
            answer=answer,
            score=score,
            confidence=min(1.0, max(0.0, conf)),
            url=art.get("url"),
        )

    # --- learning ------------------------------------------------------------------------------

    async def learn(self, *, article_id: str, question: str, negative: bool = False) -> None:
        """Make ``question`` a phrasing of ``article_id`` (or a negative) at once, in memory.

        The caller stores it in the database too (``kb_index.store.add_phrasing``) so that every
        rebuild re-applies it.
        """
        st = self._state
        try:
            a = st.article_ids.index(article_id)
        except ValueError:
            raise UnknownArticleError(article_id) from None
        vec = await self._batcher.embed(question.strip())
        self._learned.add(vec, a, negative, question.strip(), article_id)
        grown = len(self._learned.article) - self._head_fitted_on
        if grown >= max(REFIT_MIN, REFIT_FRACTION * len(st.row_article)):
            if self._refit is None or self._refit.done():
                self._refit = asyncio.get_running_loop().create_task(self.refit_head())

    async def refit_head(self) -> None:
        """Refit the article classifiers on the version's rows plus everything learned since, and
        re-tune the fusion weights, calibrator and threshold on the grown set of questions (the
        build's validation, ``calibrate.validate``); runs in a thread, searches keep using the old
        state until the new one is swapped in (one assignment)."""
        async with self._refit_lock:  # one at a time: a later refit always sees more phrasings
            await self._refit_once()

    async def _refit_once(self) -> None:
        st = self._state
        lv = self._learned
        with lv.lock:
            LV, LA, LS, n = lv.vectors.copy(), lv.article.copy(), lv.sign.copy(), len(lv.article)
            LT = [t for (_, t, _) in lv.items]
        if n == self._head_fitted_on:
            return  # nothing learned since the last refit

        def fit() -> State:
            V = storage.all_vectors(st.index)
            pos = st.row_sign > 0
            n_articles = len(st.article_ids)
            n_phrasings = int(st.row_question.sum() + (LS > 0).sum())
            has_head = wants_heads(n_articles, n_phrasings, int(pos.sum() + (LS > 0).sum()))
            new = st
            if has_head:  # also when the build had too few phrasings for them: agents added some
                X = np.vstack([V[pos], LV[LS > 0]])
                y = np.concatenate([st.row_article[pos], LA[LS > 0]])
                w, b = fit_head(X, y, n_articles)
                texts = [t for t, p in zip(st.row_text, pos, strict=True) if p]
                texts += [t for t, s in zip(LT, LS, strict=True) if s > 0]
                new = replace(st, head_w=w, head_b=b, lexhead=LexHead.fit(texts, y, n_articles))
            tuned = validate(
                np.vstack([V, LV]),
                np.concatenate([st.row_article, LA]),
                np.concatenate([st.row_sign, LS]),
                st.row_text + LT,
                np.concatenate([st.row_question, LS > 0]),
                n_articles=n_articles,
                seed=0,
                has_head=new.head_w is not None,
            )
            if tuned is not None:
                weights, calibrator, threshold, _ = tuned
                coverage = st.coverage or coverage_for(
                    calibrator, st.lexical, st.row_article, st.row_sign, n_articles
                )
                new = replace(
                    new, weights=weights, calibrator=calibrator, threshold=threshold, coverage=coverage
                )
            return new

        new = await asyncio.to_thread(fit)
        if self._state is st:
            self._state = new
            self._head_fitted_on = n

    # --- versions ------------------------------------------------------------------------------

    async def reload_if_stale(self, version: int) -> bool:
        """Load the published version if it differs from ours (``version`` is the newest one the
        caller knows about, e.g. from ``kb_index.store.current_version``). Searches keep running
        on the old version until the swap, which is one assignment."""
        if version == self._state.version:
            return False
        async with self._reload_lock:
            cur = storage.current_version(self.index_dir)
            if cur is None or cur[0] == self._state.version:
                return False
            state = await asyncio.to_thread(load_state, cur[1], cur[0], self.embedder)
            learned = Learned(self.embedder.dim)
            # phrasings learned since the old build that the new build does not hold yet stay searchable
            old, old_ids = self._learned, self._state.article_ids
            for i, (art_id, text, neg) in enumerate(old.items):
                if art_id in state.article_ids and (art_id, text, neg) not in state.phrasings:
                    learned.add(old.vectors[i], state.article_ids.index(art_id), neg, text, art_id)
            del old_ids
            self._state, self._learned = state, learned
            self._head_fitted_on = 0
            return True


def _softmax_share(scores: np.ndarray, order: np.ndarray, rank: int) -> float:
    rest = scores[order[1:]]
    if len(rest) == 0:
        return 0.0
    e = np.exp((rest - rest.max()) * 5.0)
    return float(e[rank - 1] / e.sum())
