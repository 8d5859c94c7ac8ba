"""What a console user types, made safe before it reaches the database. Text from a form or query
string goes through `clean`: control characters (NUL above all: PostgreSQL refuses it in text, so it
would be a 500) are dropped, and the value is trimmed and capped. A record id in a URL is a `RowId`:
one beyond the database's integer range is refused (422) instead of failing in the query.

    clean("  hi\\x00 there ")                 -> "hi there"
    clean("line 1\\r\\nline 2", multiline=True) -> "line 1\\nline 2"
    clean("a\\nb")                            -> "a b"       (one-line fields: search, tags, names)
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from fastapi import Path

MAX_ROW_ID = 2**31 - 1  # INTEGER primary keys (PostgreSQL's int4)
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


def clean(value: object, *, limit: int | None = None, multiline: bool = False) -> str:
    """`value` (a form field, maybe missing or an upload) as plain text: no control characters except
    newlines and tabs in a `multiline` field (in a one-line field they become spaces), no surrounding
    whitespace, at most `limit` characters."""
    if not isinstance(value, str):
        return ""
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    keep = "\n\t" if multiline else ""
    out = []
    for ch in text:
        if unicodedata.category(ch) != "Cc" or ch in keep:
            out.append(ch)
        elif ch in "\n\t\v\f":  # whitespace in a one-line field: a space, so words do not run together
            out.append(" ")
    text = "".join(out).strip()
    return text[:limit] if limit is not None else text


__all__ = ["clean", "RowId", "MAX_ROW_ID"]
