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
        Outcome(Case("ok?", "how", f, None, "followup"), hits(("how", 0.5), ("policy", 0.3)), hits(), 5.0),
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


def test_out_of_scope_messages_in_a_conversation_are_counted_apart() -> None:
    f = ("when will my order arrive?",)
    outcomes = [
        # answered from the earlier turn: a wrong answer (alone it would have gone to people)
        Outcome(Case("tell me a joke", None, f, None, "switch"), hits(("promo", 0.8)), hits(("x", 0.2)), 5.0),
        # two plausible-looking articles but the top one far under the threshold: people, not "A or B?"
        Outcome(Case("my parrot sings", None, f, None, "switch"), hits(("a", 0.4), ("b", 0.3)), hits(), 5.0),
        # near the threshold and close: a question (counted against the rule)
        Outcome(Case("my friend moves", None, f, None, "switch"), hits(("a", 0.5), ("b", 0.42)), hits(), 5.0),
        Outcome(Case("how long?", "policy", f, None, "followup"), hits(("policy", 0.8)), hits(), 5.0),
    ]
    fig = score_turns(outcomes, 0.6)
    oos = fig["out_of_scope"]
    assert (oos["n"], oos["answered"], oos["alone_answered"]) == (3, 0.3333, 0.0)
    assert oos["with_clarify"] == {"answered": 0.3333, "clarified": 0.3333, "handed_off": 0.3333}
    assert fig["followup"]["n"] == 1  # out-of-scope rows stay out of the follow-up and switch figures
    assert "switch" not in fig
    # a lower serving threshold lowers the floor: the parrot's pair is then offered
    assert score_turns(outcomes, 0.5)["out_of_scope"]["with_clarify"]["clarified"] == 0.6667
