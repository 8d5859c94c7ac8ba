"""Writing benchmark figures into bench/RESULTS.md: each KB bench script owns one marked block
inside the ``## Knowledge base`` section (created at the end of the file if missing)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

SECTION = "## Knowledge base"


def machine_line() -> str:
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"Machine: {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average at the end {load} "
        "(a shared machine: timings move with its load)."
    )


def update_results(path: Path, key: str, markdown: str) -> None:
    """Replace (or add) the block ``key`` in the Knowledge base section of ``path``."""
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Benchmark results\n"
    start, end = f"<!-- kb:{key} -->", f"<!-- /kb:{key} -->"
    block = f"{start}\n{markdown.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        text = before + block + after
    else:
        if SECTION not in text:
            text = (
                text.rstrip()
                + f"\n\n{SECTION}\n\nFigures written by `bench/kb_*.py` (details: docs/kb.md).\n"
            )
        head, tail = text.split(SECTION, 1)
        nxt = tail.find("\n## ")
        section, rest = (tail, "") if nxt < 0 else (tail[:nxt], tail[nxt:])
        text = head + SECTION + section.rstrip() + "\n\n" + block + "\n" + rest
    path.write_text(text.rstrip() + "\n", encoding="utf-8")
