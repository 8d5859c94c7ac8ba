from pathlib import Path

from kb_index.chunk import chunk
from kb_index.ingest import read_sources


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_each_format_and_malformed_files_named_with_line(tmp_path: Path) -> None:
    write(
        tmp_path / "shipping" / "delivery-times.md",
        "---\nid: delivery\ntitle: Delivery times\nurl: https://example.test/delivery\n"
        "tags: [shipping]\nquestions:\n  - how long does shipping take?\n---\n"
        "# Delivery times\n\nOrders arrive in 3-5 working days.\n\n## International\n\nAbroad: 7-10 days.\n",
    )
    write(
        tmp_path / "returns.md",
        "# Returns\n\nSend items back within **30 days** for a [refund](https://x.test/r).\n",
    )
    write(tmp_path / "broken.md", "---\ntitle: Broken\nquestions: [a, b\n---\nbody\n")
    write(
        tmp_path / "page.html",
        "<html><head><title>Site | Passwords</title></head><body><nav>Home Pricing Login</nav>"
        "<header>Big banner</header><main><h1>Reset your password</h1><p>Click <b>Forgot password</b>.</p>"
        "<h2>No email?</h2><p>Check spam.</p></main><aside>Related</aside><footer>(c) 2024</footer>"
        "<script>var x=1;</script></body></html>",
    )
    write(
        tmp_path / "faq.csv",
        "question,answer\nCan I pay by card?,We accept all major cards.\nDo you take Visa?,We accept all major cards.\n"
        ",missing question\nDo you ship to Mars?,No.\n",
    )
    write(
        tmp_path / "more.jsonl",
        '{"id": "hours", "title": "Opening hours", "body": "9 to 5.", "questions": ["when are you open?"]}\n'
        '{"question": ["can I cancel?", "how to cancel an order"], "answer": "Yes, within 24 hours."}\n'
        '{"broken json\n'
        "[1, 2]\n",
    )
    (tmp_path / "latin1.md").write_bytes(b"# Caf\xe9\n\nok\n")

    articles, errors = read_sources(tmp_path)
    by_id = {a.id: a for a in articles}

    md = by_id["delivery"]
    assert md.title == "Delivery times" and md.url == "https://example.test/delivery"
    assert md.questions == ["how long does shipping take?"] and md.tags == ["shipping"]
    assert "# Delivery times" not in md.body and "## International" in md.body
    assert "returns" in by_id and "readme" not in by_id  # path-derived id; the folder README is skipped
    html = by_id["page"]
    assert html.title == "Reset your password"
    assert "Forgot password" in html.body and "Check spam" in html.body
    for junk in ("Home Pricing", "banner", "Related", "(c) 2024", "var x"):
        assert junk not in html.body
    card = next(a for a in articles if a.body == "We accept all major cards.")
    assert card.questions == ["Can I pay by card?", "Do you take Visa?"]
    assert any(a.body == "No." for a in articles)
    assert by_id["hours"].questions == ["when are you open?"]
    assert any(a.questions == ["can I cancel?", "how to cancel an order"] for a in articles)

    where = {(Path(e.file).name, e.line) for e in errors}
    assert ("broken.md", 3) in where  # the unclosed flow sequence, line of the file
    assert ("faq.csv", 4) in where
    assert ("more.jsonl", 3) in where and ("more.jsonl", 4) in where
    assert ("latin1.md", 1) in where
    assert all(str(e).startswith(e.file) for e in errors)


def test_chunks_keep_headings_and_stay_short() -> None:
    body = "Intro line.\n\n## Fees\n\n" + " ".join(f"Sentence number {i} is here." for i in range(80))
    passages = chunk(body)
    assert passages[0].heading == "" and passages[0].text == "Intro line."
    assert all(p.heading == "Fees" for p in passages[1:])
    assert all(len(p.text) <= 550 for p in passages)
    assert "Fees" in passages[1].embed_text("Pricing") and "Pricing" in passages[1].embed_text("Pricing")
