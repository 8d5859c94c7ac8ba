"""End-to-end with the bundled model (slow): ingest a small Markdown KB, search, CLI."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.kb_cli import app
from kb_index import Embedder, KnowledgeBase, build_index

from .test_index import write_kb

pytestmark = pytest.mark.slow


async def test_paraphrases_find_the_right_article(tmp_path: Path, embedder: Embedder) -> None:
    build_index(write_kb(tmp_path / "kb"), tmp_path / "index", embedder=embedder, progress=False)
    kb = KnowledgeBase.open(tmp_path / "index", embedder=embedder)
    cases = {
        "my package still hasn't shown up": "delivery",
        "I want my money back for these shoes": "returns",
        "locked out of my account": "password",
        "are you open on saturday": "hours",
    }
    for question, expected in cases.items():
        hits = await kb.search(question)
        assert hits[0].article_id == expected, (question, hits[0])
        assert hits[0].confidence >= hits[1].confidence
    follow = await kb.search("and for international orders?", history=["how long does delivery take?"])
    assert follow[0].article_id == "delivery" and "7 to 10 days" in follow[0].answer


def test_cli_ingest_search_eval(tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'none.db'}")
    runner = CliRunner()
    kb_dir = write_kb(tmp_path / "kb")
    (kb_dir / "bad.jsonl").write_text('{"id": "x"\n')
    res = runner.invoke(app, ["ingest", str(kb_dir), "--index-dir", str(tmp_path / "index"), "--no-db"])
    assert res.exit_code == 0, res.output
    assert "index v1" in res.output and "bad.jsonl:1" in res.output
    res = runner.invoke(
        app, ["search", "when do you close?", "--json", "--index-dir", str(tmp_path / "index")]
    )
    assert res.exit_code == 0, res.output
    hits = json.loads(res.output)
    assert hits[0]["article_id"] == "hours" and 0 <= hits[0]["confidence"] <= 1

    arts = tmp_path / "a.jsonl"
    arts.write_text(
        "".join(
            json.dumps({"id": k, "title": t, "body": b, "questions": q}) + "\n"
            for k, (t, q, b) in {
                "delivery": ("Delivery", ["how long is shipping", "when does my order come"], "3-5 days."),
                "returns": ("Returns", ["how to return", "send back an item"], "30 days."),
            }.items()
        )
    )
    qs = tmp_path / "q.jsonl"
    qs.write_text(
        json.dumps({"text": "how long will my parcel take", "expected": "delivery"})
        + "\n"
        + json.dumps({"text": "what is the weather on mars", "expected": None})
        + "\n"
    )
    res = runner.invoke(app, ["eval", "--articles", str(arts), "--queries", str(qs), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert out["n"] == 2 and out["top1"] == 1.0
    assert {"threshold", "in_scope_accuracy", "oos_recall", "oos_precision", "auroc", "latency_ms"} <= set(
        out
    )
