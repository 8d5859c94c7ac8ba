"""Test support for the privacy tests: every value of every column of every table, as text."""

from __future__ import annotations

import json
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import Base, import_all_models


async def every_cell(sm: async_sessionmaker[AsyncSession]) -> list[tuple[str, str, str]]:
    """(table, column, value as text) for every text or JSON cell in the database."""
    import_all_models()
    out: list[tuple[str, str, str]] = []
    async with sm() as s:
        for table in Base.metadata.sorted_tables:
            for row in (await s.execute(select(table))).mappings():
                for column, value in row.items():
                    # Only text and JSON can hold what a person wrote or told us. Timestamps and numbers
                    # cannot, and their digits would match a needle by chance ("4111" in ".424111").
                    if not isinstance(value, (str, dict, list)):
                        continue
                    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
                    out.append((table.name, str(column), text))
    return out


def found(needles: Iterable[str], haystack: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """(needle, where, excerpt) for every needle found (case-insensitive) in (where, text) pairs."""
    hits = []
    lowered = [(where, text, text.lower()) for where, text in haystack]
    for needle in needles:
        n = needle.lower()
        for where, text, low in lowered:
            if n in low:
                at = low.index(n)
                hits.append((needle, where, text[max(0, at - 40) : at + len(n) + 40]))
    return hits
