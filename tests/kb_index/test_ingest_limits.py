"""`kb ingest` caps each source file's size before reading it and shows its progress (issue 13, item 6)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from kb_index.ingest import MAX_FILE_BYTES, read_sources


def test_a_huge_html_file_is_refused_unread_and_the_rest_is_read(tmp_path: Path) -> None:
    (tmp_path / "ok.md").write_text("# Opening hours\n\nWe are open 9 to 5.\n")
    huge = tmp_path / "huge.html"
    with huge.open("wb") as f:  # ~55 MB of nested markup, as the probe used
        f.write(b"<html><body>" + b"<div><a href='https://evil'>x</a>" * (54 * 1024 * 1024 // 34) + b"</body></html>")
    tracemalloc.start()
    articles, errors = read_sources(tmp_path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [a.title for a in articles] == ["Opening hours"]
    [error] = errors
    assert error.file == str(huge) and "52.4 MB is over the 10.0 MB limit (KB_MAX_FILE_MB)" in str(error)
    assert peak < 5 * 1024 * 1024  # the file was never read into memory


def test_the_limit_is_a_parameter(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\n" + "word " * 400)
    assert read_sources(tmp_path, max_bytes=100)[1][0].message.startswith("0.0 MB is over the 0.0 MB limit")
    assert read_sources(tmp_path, max_bytes=MAX_FILE_BYTES)[1] == []


def test_progress_shows_files_and_bytes_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for n in range(3):
        (tmp_path / f"a{n}.md").write_text(f"# Article {n}\n\nText {n}.\n")
    articles, _ = read_sources(tmp_path, progress=True)
    assert len(articles) == 3
    err = capsys.readouterr().err
    assert "reading" in err and "a2.md" in err
