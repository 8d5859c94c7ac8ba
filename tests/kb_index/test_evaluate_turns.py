"""The eval contract's conversation rows: reading them and the follow-up / switch figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb_index.evaluate import Case, Outcome, read_cases, score_turns
from kb_index.types import Hit


def hits(*pairs: tuple[str, float]) -> list[Hit]:
    return [Hit(article_id=a, title=a, snippet="", answer="", score=c, confidence=c) for a, c in pairs]


def test_rows_with_history_are_follow_ups_unless_they_say_otherwise(tmp_path: Path) -> None:
    p = tmp_path / "q.jsonl"
    p.write_text(
        '{"text": "where is it?", "expected": "a"}\n\n'
        '{"text": "how long?", "expected": "b", "history": ["return a lamp"], "last_article": "b"}\n'
        '{"text": "gift cards?", "expected": "c", "history": ["return a lamp"], "kind": "switch"}\n'
    )
    single, follow, switch = read_cases(p)
    assert single == Case("where is it?", "a")
    assert follow == Case("how long?", "b", ("return a lamp",), "b", "followup")
    assert switch.kind == "switch" and switch.last_article is None


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ('{"text": "x", "expected": null, "history": "not a list"}', "history must be a list"),
        ('{"text": "x", "expected": null, "history": ["a"], "kind": "chat"}', "kind must be one of"),
        ('{"text": "x", "expected": null, "kind": "switch"}', "a switch row needs a history"),
    ],
)
def test_bad_rows_are_refused_with_their_line(tmp_path: Path, row: str, message: str) -> None:
    p = tmp_path / "q.jsonl"
    p.write_text('{"text": "fine", "expected": null}\n' + row + "\n")
    with pytest.raises(ValueError, match=f"q.jsonl:2: {message}"):
        read_cases(p)


def test_follow_up_and_switch_figures_at_the_serving_threshold() -> None:
    f, s = ("return a lamp",), ("how long?",)
    outcomes = [
        Outcome(Case("how long?", "policy", f, None, "followup"), hits(("policy", 0.8)), hits(("x", 0.1)), 5.0),
        Outcome(Case("label?", "how", f, None, "followup"), hits(("policy", 0.7)), hits(("how", 0.3)), 5.0),
        Outcome(Case("ok?", "how", f, None, "followup"), hits(("how", 0.4), ("policy", 0.3)), hits(), 5.0),
        Outcome(Case("gift?", "gift", s, None, "switch"), hits(("gift", 0.9)), hits(("gift", 0.9)), 5.0),
        Outcome(Case("cards?", "gift", s, None, "switch"), hits(("policy", 0.7)), hits(("gift", 0.5)), 5.0),
    ]
    fig = score_turns(outcomes, 0.6)
    fu, sw = fig["followup"], fig["switch"]
    assert (fu["n"], fu["top1"], fu["answered_right"], fu["answered_wrong"], fu["handed_off"]) == (
        3, 0.6667, 0.3333, 0.3333, 0.3333)
    assert fu["with_clarify"]["clarified"] == 0.3333 and fu["with_clarify"]["clarified_with_right"] == 0.3333
    assert fu["with_clarify"]["handed_off"] == 0.0
    assert (sw["as_alone"], sw["answered_right"], sw["answered_wrong"]) == (0.5, 0.5, 0.5)
    assert "single" not in fig
