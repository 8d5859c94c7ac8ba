"""Follow-up figures for bench/RESULTS.md: the demo store's KB (kb/sample) and Banking77 with the
two-turn sets in kb/eval (tune and held-out splits), through the same code as ``switchboard kb
eval``, at the serving threshold. Three ways of searching are measured in the same run: the
message alone, the word-count rule of 45d142f (the previous turn prepended when the message has at
most 4 words or starts with "and/also/what about..."), and ``KnowledgeBase.search`` as it is now.
One Banking77 build (~10k embeddings) and ~5k searches: 3-8 min on 2 busy cores.

    python bench/kb_followups.py [--data /work/shared/data/banking77] [--work var/bench/followups]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kb_index import Embedder, KnowledgeBase, build_index, clarify
from kb_index.evaluate import evaluate_turns, read_cases
from kb_index.index import is_follow_up
from kb_index.report import machine_line, update_results
from kb_index.types import Hit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).with_name("RESULTS.md")
SERVING = 0.6  # bot.settings.Settings.answer_threshold's default


class Alone:
    """Every message searched by itself."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb

    async def search(
        self, query: str, *, history: Sequence[str] = (), last_article: str | None = None, k: int = 3
    ) -> list[Hit]:
        return await self.kb.search_text(query, k=k)


class WordRule(Alone):
    """The rule at 45d142f: the previous turn prepended to a short or "and ..." message."""

    async def search(
        self, query: str, *, history: Sequence[str] = (), last_article: str | None = None, k: int = 3
    ) -> list[Hit]:
        prev = next((h.strip() for h in reversed(history) if h.strip()), "")
        text = f"{prev} {query.strip()}" if prev and is_follow_up(query) else query
        return await self.kb.search_text(text, k=k)


def open_kb(articles: Path, work: Path, emb: Embedder, reuse: bool) -> KnowledgeBase:
    if not (reuse and (work / "CURRENT").exists()):
        build_index(articles, work, embedder=emb, progress=False)
    return KnowledgeBase.open(work, embedder=emb)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    emb = Embedder.load()
    out: dict[str, Any] = {}
    sets = {
        "sample": (ROOT / "kb" / "sample", ("sample-followups", "sample-oos-turns")),
        "banking77": (args.data / "articles.jsonl", ("banking77-followups",)),
    }
    for name, (articles, prefixes) in sets.items():
        if args.only and name != args.only:
            continue
        kb = open_kb(articles, args.work / name, emb, args.reuse)
        for split in ("tune", "heldout"):
            cases = [c for p in prefixes for c in read_cases(ROOT / "kb" / "eval" / f"{p}-{split}.jsonl")]
            for way, searcher in (("alone", Alone(kb)), ("word_rule", WordRule(kb)), ("context", kb)):
                t = time.perf_counter()
                fig = await evaluate_turns(searcher, cases, threshold=args.threshold)
                fig["seconds"] = round(time.perf_counter() - t, 1)
                out[f"{name}/{split}/{way}"] = fig
                print(json.dumps({f"{name}/{split}/{way}": fig}), flush=True)
    return out


def render(out: dict[str, Any], threshold: float) -> str:
    rows = [
        "### Follow-ups in a conversation (`python bench/kb_followups.py`)",
        "",
        f"Two-turn sets in `kb/eval/` (docs/kb.md, *Conversations*), at the serving threshold {threshold}. "
        "*alone*: the message searched by itself; *word rule*: the rule of 45d142f (previous turn "
        "prepended when the message has at most 4 words or starts with and/also/what about...); "
        "*context*: `KnowledgeBase.search` now. Shares of each kind's cases; the held-out splits were "
        "not used for any choice.",
        "",
        "| set / split / search | follow-ups n | top-1 | right | wrong | handed off "
        "| with clarifying: right / wrong / asked (right offered) | switches n | right | wrong | as if alone "
        "| switches with clarifying: right / wrong / asked |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, fig in out.items():
        f, s = fig.get("followup", {}), fig.get("switch", {})
        fc, sc = f.get("with_clarify", {}), s.get("with_clarify", {})
        rows.append(
            f"| {key} | {f.get('n', '')} | {f.get('top1', '')} | **{f.get('answered_right', '')}** | "
            f"{f.get('answered_wrong', '')} | {f.get('handed_off', '')} | {fc.get('answered_right', '')} / "
            f"{fc.get('answered_wrong', '')} / {fc.get('clarified', '')} ({fc.get('clarified_with_right', '')}) | "
            f"{s.get('n', '')} | {s.get('answered_right', '')} | {s.get('answered_wrong', '')} | "
            f"**{s.get('as_alone', '')}** | {sc.get('answered_right', '')} / {sc.get('answered_wrong', '')} / "
            f"{sc.get('clarified', '')} |"
        )
    oos = {key: fig["out_of_scope"] for key, fig in out.items() if "out_of_scope" in fig}
    if oos:
        rows += [
            "",
            "Out-of-scope messages after a real first turn (`kb/eval/sample-oos-turns-*.jsonl`: chit-chat and "
            'unrelated requests, e.g. "my neighbour\'s parrot keeps singing opera at night" after a delivery '
            "question; 20 per split). Every answer to them is wrong, and so is a clarifying question; *with "
            f"clarifying* applies `kb_index.clarify.options` (floor {clarify.TOP_MIN_SHARE} × the threshold) first, "
            "as the engine does.",
            "",
            "| set / split / search | n | answered (alone) | with clarifying: answered / asked / handed off |",
            "|---|---|---|---|",
        ]
        for key, o in oos.items():
            c = o["with_clarify"]
            rows.append(
                f"| {key} | {o['n']} | **{o['answered']}** ({o['alone_answered']}) | "
                f"{c['answered']} / **{c['clarified']}** / {c['handed_off']} |"
            )
    rows += ["", machine_line()]
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data/banking77"))
    ap.add_argument("--work", type=Path, default=Path("var/bench/followups"))
    ap.add_argument("--threshold", type=float, default=SERVING)
    ap.add_argument("--reuse", action="store_true", help="reuse indexes already built in --work")
    ap.add_argument("--only", choices=("sample", "banking77"), help="one set only (no RESULTS.md update)")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    out = asyncio.run(run(args))
    if not args.only and not args.no_write:
        update_results(RESULTS, "followups", render(out, args.threshold))


if __name__ == "__main__":
    main()
