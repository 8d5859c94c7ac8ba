"""Derive two-turn conversations from the Banking77 test split (CC BY 4.0, PolyAI; see
/work/shared/data/banking77/SOURCE.md) for the follow-up eval; the method is in docs/kb.md.

- **Follow-up.** The second turn is a test question of intent Y that names its family's object
  ("card", "top-up", "transfer", ...), made elliptical by replacing that noun phrase with "it"
  ("How do I activate my card?" -> "How do I activate it?"); only questions where exactly one
  replacement happened and at most 12 words remain are used. The first turn is another test
  question naming the same object: of Y itself (the customer asks on about the same thing) or,
  half the time, of a sibling intent X of the same family (a new aspect of the same object).
- **Topic switch.** The first turn is a test question from another family; the second turn is an
  unchanged test question of Y (it must be answered as if alone).

Cases are shuffled with a seed and split in halves: ``tune`` (for fitting) and ``heldout``
(untouched by tuning), at most ``--limit`` cases in all. Output: ``kb/eval/banking77-followups-{tune,heldout}.jsonl``.

    python bench/make_followups_banking77.py [--data /work/shared/data/banking77] [--seed 11]
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
from collections import defaultdict
from pathlib import Path

# family -> (intent-name test, the object's noun phrase)
FAMILIES: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    "top_up": (
        re.compile(r"top_up|topping_up"),
        re.compile(r"\b(?:my|the|a|this|that)\s+(?:recent\s+|last\s+)?top[- ]?ups?\b", re.I),
    ),
    "transfer": (
        re.compile(r"transfer"),
        re.compile(r"\b(?:my|the|a|this|that)\s+(?:recent\s+|last\s+)?transfers?\b", re.I),
    ),
    "cash": (
        re.compile(r"cash_withdrawal|atm|wrong_amount_of_cash"),
        re.compile(r"\b(?:my|the|a|this|that)\s+(?:recent\s+|last\s+|cash\s+|atm\s+)?withdrawals?\b", re.I),
    ),
    "exchange": (
        re.compile(r"exchange"),
        re.compile(r"\b(?:the|an?|this|that|your)\s+exchange\s+rates?\b", re.I),
    ),
    "identity": (
        re.compile(r"identity|verify"),
        re.compile(r"\b(?:my|the|this|that)\s+(?:identity\s+)?verification\b|\bmy\s+identity\b", re.I),
    ),
    "card": (
        re.compile(r"card|pin|contactless|apple_pay|visa"),
        re.compile(
            r"\b(?:my|the|a|this|that|your)\s+(?:new\s+)?card\b",
            re.I,
        ),
    ),
}
MAX_WORDS = 12
PRONOUN = "it"


def family(intent: str) -> str | None:
    for name, (test, _) in FAMILIES.items():
        if test.search(intent):
            return name
    return None


def elide(text: str, fam: str) -> str | None:
    """``text`` with its one family noun phrase replaced by "it", or None."""
    new, n = FAMILIES[fam][1].subn(PRONOUN, text)
    if n != 1 or len(re.findall(r"\w+", new)) > MAX_WORDS:
        return None
    return new


def names_object(text: str, fam: str) -> bool:
    return bool(FAMILIES[fam][1].search(text))


def make(data: Path, seed: int, limit: int = 600) -> list[dict[str, object]]:
    rng = random.Random(seed)
    by_intent: dict[str, list[str]] = defaultdict(list)
    with (data / "test.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            by_intent[row["category"]].append(row["text"].strip())
    fam_of = {i: family(i) for i in by_intent}
    naming: dict[str, list[tuple[str, str]]] = defaultdict(list)  # family -> (intent, text naming it)
    for intent, texts in sorted(by_intent.items()):
        fam = fam_of[intent]
        if fam:
            naming[fam] += [(intent, t) for t in texts if names_object(t, fam)]
    cases: list[dict[str, object]] = []
    for intent, texts in sorted(by_intent.items()):
        fam = fam_of[intent]
        if fam is None:
            continue
        for text in texts:
            short = elide(text, fam)
            if short is None:
                continue
            same = [t for i, t in naming[fam] if i == intent and t != text]
            sibling = [t for i, t in naming[fam] if i != intent]
            pool = sibling if (rng.random() < 0.5 and sibling) or not same else same
            cases.append({"history": [rng.choice(pool)], "text": short, "expected": intent, "kind": "followup"})
    n_switch = len(cases) // 2
    intents = sorted(by_intent)
    for _ in range(n_switch):
        intent = rng.choice(intents)
        text = rng.choice(by_intent[intent])
        other = [i for i in intents if fam_of[i] is None or fam_of[i] != fam_of[intent]]
        first = rng.choice(by_intent[rng.choice(other)])
        cases.append({"history": [first], "text": text, "expected": intent, "kind": "switch"})
    rng.shuffle(cases)
    return cases[:limit]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/banking77"))
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "kb" / "eval")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--limit", type=int, default=600, help="cases in all (both splits)")
    args = ap.parse_args()
    cases = make(args.data, args.seed, args.limit)
    half = len(cases) // 2
    args.out.mkdir(parents=True, exist_ok=True)
    for name, part in (("tune", cases[:half]), ("heldout", cases[half:])):
        path = args.out / f"banking77-followups-{name}.jsonl"
        path.write_text("".join(json.dumps(c) + "\n" for c in part), encoding="utf-8")
        kinds = {k: sum(c["kind"] == k for c in part) for k in ("followup", "switch")}
        print(f"{path}: {len(part)} cases {kinds}")


if __name__ == "__main__":
    main()
