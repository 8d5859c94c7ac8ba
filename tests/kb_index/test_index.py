import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kb_index import IndexMismatchError, IndexNotFoundError, KnowledgeBase, build_index, store
from kb_index.gaps import gaps

from .fakes import HashEmbedder

ARTICLES = {
    "delivery": (
        "Delivery times",
        ["how long does delivery take", "when will my parcel arrive", "shipping time"],
        "Orders arrive in 3 to 5 working days.\n\n## International orders\n\nAbroad, allow 7 to 10 days.",
    ),
    "returns": (
        "Returns",
        ["how do I return an item", "can I send it back", "refund for a return"],
        "Send items back within 30 days for a full refund.",
    ),
    "password": (
        "Reset password",
        ["I forgot my password", "cannot log in", "reset my login"],
        "Click Forgot password on the sign-in page and follow the email.",
    ),
    "hours": (
        "Opening hours",
        ["when are you open", "what time do you close", "opening times on sunday"],
        "We are open 9 to 5, Monday to Saturday.",
    ),
}


def write_kb(folder: Path, articles: dict[str, tuple[str, list[str], str]] = ARTICLES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.md"):
        old.unlink()
    for aid, (title, qs, body) in articles.items():
        fm = "\n".join(f"  - {q}" for q in qs)
        (folder / f"{aid}.md").write_text(
            f"---\nid: {aid}\ntitle: {title}\nurl: https://x.test/{aid}\nquestions:\n{fm}\n---\n{body}\n"
        )
    return folder


async def test_search_returns_hits_with_answer_and_confidence(tmp_path: Path) -> None:
    emb = HashEmbedder()
    report = build_index(write_kb(tmp_path / "kb"), tmp_path / "index", embedder=emb, progress=False)
    assert report.articles == 4 and not report.errors
    kb = KnowledgeBase.open(tmp_path / "index", embedder=emb)  # type: ignore[arg-type]
    hits = await kb.search("how long does delivery take abroad for international orders?", k=3)
    assert [h.article_id for h in hits][0] == "delivery" and len(hits) == 3
    top = hits[0]
    assert top.url == "https://x.test/delivery" and "7 to 10 days" in top.answer and "---" not in top.answer
    assert 0.0 <= top.confidence <= 1.0 and top.confidence >= hits[1].confidence
    assert len(top.snippet) <= 160 and len(top.answer) <= 600
    # a follow-up is searched with the previous customer turn
    follow = await kb.search("and on sunday?", history=["when are you open"])
    alone = await kb.search("and on sunday?")
    assert follow[0].article_id == "hours" and follow[0].confidence >= alone[0].confidence


async def test_refuses_other_model_or_dimension(tmp_path: Path) -> None:
    build_index(write_kb(tmp_path / "kb"), tmp_path / "index", embedder=HashEmbedder(), progress=False)
    with pytest.raises(IndexMismatchError) as exc:
        KnowledgeBase.open(tmp_path / "index", embedder=HashEmbedder(name="other"))  # type: ignore[arg-type]
    assert exc.value.field == "model"
    with pytest.raises(IndexMismatchError) as exc:
        KnowledgeBase.open(tmp_path / "index", embedder=HashEmbedder(dim=64))  # type: ignore[arg-type]
    assert exc.value.field == "dim" and exc.value.found == 128
    with pytest.raises(IndexNotFoundError):
        KnowledgeBase.open(tmp_path / "nothing", embedder=HashEmbedder())  # type: ignore[arg-type]


async def test_incremental_reingest_embeds_only_changes_and_drops_removed(tmp_path: Path) -> None:
    emb = HashEmbedder()
    kb_dir = write_kb(tmp_path / "kb")
    first = build_index(kb_dir, tmp_path / "index", embedder=emb, progress=False)
    assert first.embedded == first.rows
    changed = dict(ARTICLES)
    del changed["hours"]
    title, qs, body = changed["returns"]
    changed["returns"] = (title, qs, body + " Shoes must be unworn.")
    write_kb(kb_dir, changed)
    second = build_index(kb_dir, tmp_path / "index", embedder=emb, progress=False)
    assert second.removed == ["hours"] and second.changed == ["returns"] and second.added == []
    assert second.embedded == 1  # only the changed passage
    assert second.reused == second.rows - 1
    kb = KnowledgeBase.open(tmp_path / "index", embedder=emb)  # type: ignore[arg-type]
    assert "hours" not in kb.article_ids() and kb.version == 2


async def test_reindex_while_searching_never_fails(tmp_path: Path) -> None:
    emb = HashEmbedder()
    kb_dir = write_kb(tmp_path / "kb")
    build_index(kb_dir, tmp_path / "index", embedder=emb, progress=False)
    kb = KnowledgeBase.open(tmp_path / "index", embedder=emb)  # type: ignore[arg-type]
    results: list[str] = []
    stop = asyncio.Event()

    async def searcher() -> None:
        while not stop.is_set():
            hits = await kb.search("I forgot my password")
            results.append(hits[0].article_id)

    tasks = [asyncio.create_task(searcher()) for _ in range(4)]
    for i in range(3):
        extra = dict(ARTICLES)
        extra[f"new{i}"] = (f"New topic {i}", [f"question about gizmo {i}"], f"Gizmo {i} answer.")
        write_kb(kb_dir, extra)
        report = await asyncio.to_thread(
            build_index, kb_dir, tmp_path / "index", embedder=emb, progress=False
        )
        assert await kb.reload_if_stale(report.version)
        assert kb.version == report.version
        assert not await kb.reload_if_stale(report.version)
        seen = len(results)  # a few searches on the new version before the next rebuild
        for _ in range(500):
            if len(results) >= seen + 4:
                break
            await asyncio.sleep(0.01)
    stop.set()
    await asyncio.gather(*tasks)
    assert len(results) > 10 and set(results) == {"password"}
    assert f"new{2}" in kb.article_ids()


async def test_learned_phrasing_is_immediate_and_survives_rebuild(
    tmp_path: Path, db: async_sessionmaker[AsyncSession]
) -> None:
    emb = HashEmbedder()
    kb_dir = write_kb(tmp_path / "kb")
    build_index(kb_dir, tmp_path / "index", embedder=emb, progress=False)
    kb = KnowledgeBase.open(tmp_path / "index", embedder=emb)  # type: ignore[arg-type]
    question = "zorbulate my flux capacitor"
    before = await kb.search(question)
    await kb.learn(article_id="returns", question=question)
    async with db() as session:
        await store.add_phrasing(session=session, article_id="returns", question=question)
        await store.add_phrasing(session=session, article_id="returns", question=question)  # idempotent
        await store.add_phrasing(
            session=session, article_id="hours", question="when are you open", negative=True
        )
    after = await kb.search(question)
    assert after[0].article_id == "returns" and after[0].confidence > (
        before[0].confidence if before[0].article_id == "returns" else 0.0
    )
    async with db() as session:
        phrasings = await store.list_phrasings(session=session)
    assert len(phrasings) == 2
    report = build_index(kb_dir, tmp_path / "index", embedder=emb, extra_phrasings=phrasings, progress=False)
    async with db() as session:
        await store.record_version(
            session=session,
            index_dir=tmp_path / "index",
            version=report.version,
            articles=report.articles,
            rows=report.rows,
            model=emb.name,
        )
        announced = await store.current_version(session=session, index_dir=tmp_path / "index")
    assert announced == report.version
    fresh = KnowledgeBase.open(tmp_path / "index", embedder=emb)  # type: ignore[arg-type]
    assert (await fresh.search(question))[0].article_id == "returns"
    # the agent's negative: that exact question no longer goes to "hours"
    assert (await fresh.search("when are you open"))[0].article_id != "hours"
    rows = [json.loads(x) for x in (report.path / "chunks.jsonl").read_text().splitlines()]
    assert {"learned", "negative"} <= {r["kind"] for r in rows}


async def test_negative_is_immediate(tmp_path: Path) -> None:
    emb = HashEmbedder()
    build_index(write_kb(tmp_path / "kb"), tmp_path / "index", embedder=emb, progress=False)
    kb = KnowledgeBase.open(tmp_path / "index", embedder=emb)  # type: ignore[arg-type]
    q = "can I send it back"
    assert (await kb.search(q))[0].article_id == "returns"
    await kb.learn(article_id="returns", question=q, negative=True)
    assert (await kb.search(q))[0].article_id != "returns"


async def test_concurrent_queries_are_batched(tmp_path: Path) -> None:
    emb = HashEmbedder()
    build_index(write_kb(tmp_path / "kb"), tmp_path / "index", embedder=emb, progress=False)
    kb = KnowledgeBase.open(tmp_path / "index", embedder=emb)  # type: ignore[arg-type]
    emb.calls.clear()
    qs = [f"when will my parcel arrive {i}" for i in range(40)]
    got = await asyncio.gather(*(kb.search(q) for q in qs))
    assert all(h[0].article_id == "delivery" for h in got)
    assert sum(emb.calls) == 40 and len(emb.calls) < 10


def test_gaps_clusters_by_size() -> None:
    qs = [
        "do you sell gift cards",
        "gift cards for sale?",
        "do you sell gift cards",
        "buy a gift card",
        "is there a student discount",
        "student discount please",
        "parking at the store",
    ]
    clusters = gaps(qs, embedder=HashEmbedder(dim=256), distance=0.8)  # type: ignore[arg-type]
    assert clusters[0].size >= 3 and "gift" in clusters[0].label
    assert sum(c.size for c in clusters) == len(qs)
    assert [c.size for c in clusters] == sorted((c.size for c in clusters), reverse=True)


async def test_calibrated_index_uses_coverage_and_an_older_params_file_still_loads(tmp_path: Path) -> None:
    import random

    from kb_index import storage
    from kb_index.scoring import BASIC_FEATURES, FEATURES

    rng = random.Random(0)
    filler = "please help me with my account today about the a an really quickly".split()
    topics = "delivery refund password hours invoice coupon warranty address voucher parcel".split()
    arts = {}
    for t in topics:
        qs = [" ".join(rng.sample(filler, 3) + [t, f"{t}s"] + rng.sample(filler, 2)) for _ in range(24)]
        arts[t] = (t.title(), list(dict.fromkeys(qs)), f"All about {t}.")
    emb = HashEmbedder()
    report = build_index(write_kb(tmp_path / "kb", arts), tmp_path / "index", embedder=emb, progress=False)
    assert report.validation and report.validation["n"] >= 20  # enough held-out questions to calibrate
    kb = KnowledgeBase.open(tmp_path / "index", embedder=emb)  # type: ignore[arg-type]
    assert kb.params["calibrator"]["features"] == list(FEATURES)
    assert kb._state.coverage is not None
    hits = await kb.search("help me with my refund please", k=2)
    assert hits[0].article_id == "refund" and 0.0 <= hits[0].confidence <= 1.0

    # an index written before these features: its calibrator names none and keeps 9 coefficients
    cur = storage.current_version(tmp_path / "index")
    assert cur is not None
    params_file = cur[1] / "params.json"
    params = json.loads(params_file.read_text())
    cal = params["calibrator"]
    cols = [FEATURES.index(f) for f in BASIC_FEATURES]
    params["calibrator"] = {
        "mean": [cal["mean"][i] for i in cols],
        "std": [cal["std"][i] for i in cols],
        "coef": [cal["coef"][i] for i in cols],
        "intercept": cal["intercept"],
        "fitted": True,
    }
    params_file.write_text(json.dumps(params))
    old = KnowledgeBase.open(tmp_path / "index", embedder=emb)  # type: ignore[arg-type]
    assert old._state.coverage is None
    hits = await old.search("help me with my refund please", k=2)
    assert hits[0].article_id == "refund" and 0.0 <= hits[0].confidence <= 1.0


async def test_refit_after_learning_retunes_weights_and_calibration(tmp_path: Path) -> None:
    import random

    from kb_index.scoring import FEATURES

    rng = random.Random(1)
    filler = "please help me with my account today about the a an really quickly".split()
    topics = "delivery refund password hours invoice coupon warranty address voucher parcel".split()

    def question(t: str) -> str:
        return " ".join(rng.sample(filler, 3) + [t, f"{t}s"] + rng.sample(filler, 2))

    # two questions per article: too few to validate, so the build keeps default weights and prior
    arts = {t: (t.title(), [question(t), question(t)], f"All about {t}.") for t in topics}
    emb = HashEmbedder()
    build_index(write_kb(tmp_path / "kb", arts), tmp_path / "index", embedder=emb, progress=False)
    kb = KnowledgeBase.open(tmp_path / "index", embedder=emb)  # type: ignore[arg-type]
    assert not kb._state.calibrator.fitted
    for t in topics:  # agents teach it 22 more phrasings per article
        await asyncio.gather(*(kb.learn(article_id=t, question=question(t)) for _ in range(22)))
    await kb.refit_head()  # waits for any background refit, then refits on everything learned
    st = kb._state
    assert st.calibrator.fitted and st.calibrator.features == list(FEATURES)
    assert st.coverage is not None  # the new calibrator reads lexical coverage
    hits = await kb.search("help me with my invoice please", k=2)
    assert hits[0].article_id == "invoice" and 0.0 <= hits[0].confidence <= 1.0
