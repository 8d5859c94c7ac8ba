"""Slack's text format, both ways (pure functions).

Out (text we did not write, in mrkdwn or a message's ``text`` fallback): `escape` turns ``& < >`` into
entities, so ``<!channel>``, ``<@U1>`` and ``<https://evil|click>`` arrive as text, never as a mention or a
link. `link` builds ``<url|label>`` only for http(s) URLs, with ``| < >`` and spaces in the URL
percent-encoded and the label escaped; anything else (``javascript:``, ``data:``) is shown as text.

In (an agent's thread reply, on its way to a customer): `to_plain` decodes Slack's wire format:
``&lt; &gt; &amp;`` to characters, ``<@U1>`` to ``@Name``, ``<#C1|general>`` to ``#general``,
``<!here>`` to ``@here``, ``<https://x|click>`` to ``https://x`` (the URL, never a label that could
disguise it), ``<mailto:a@b|a@b>`` to ``a@b``. NUL characters are dropped (no database can store them; `storable`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

_ENCODE = {"|": "%7C", ">": "%3E", "<": "%3C", " ": "%20", '"': "%22", "\n": "", "\r": "", "\t": ""}
_TOKEN = re.compile(r"<([^<>]*)>")
USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^<>]*)?>")


def escape(text: str) -> str:
    """Slack mrkdwn escaping for text we did not write (customers, KB articles)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def safe_url(url: object) -> str | None:
    """`url` if it is an absolute http(s) URL with a host, made safe inside ``<...|...>``; else None."""
    if not isinstance(url, str):
        return None
    raw = url.strip()
    try:
        parts = urlsplit(raw)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    out = "".join(_ENCODE.get(ch, ch) for ch in raw)
    return out.replace("&", "&amp;")


def link(url: object, label: str) -> str:
    """``<url|label>`` for a safe http(s) URL; the escaped label alone otherwise."""
    safe = safe_url(url)
    shown = escape(label).replace("|", "\u2758")
    return f"<{safe}|{shown}>" if safe else shown


def thread_link(channel: str | None, ts: str | None) -> str | None:
    """The permalink of a message (a thread's root), or None without both parts:
    ``thread_link("C123", "1712345678.000100")`` -> ``https://slack.com/archives/C123/p1712345678000100``."""
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}" if channel and ts else None


def user_ids(text: str) -> list[str]:
    return list(dict.fromkeys(USER_MENTION.findall(text)))


def to_plain(text: str, names: Mapping[str, str | None] | None = None) -> str:
    """Slack wire text -> what a customer should read (see the module docstring)."""
    names = names or {}

    def token(m: re.Match[str]) -> str:
        inner = m.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            uid = target[1:]
            return "@" + (names.get(uid) or label or "someone")
        if target.startswith("#"):
            return "#" + (label or "channel")
        if target.startswith("!"):
            if target.startswith("!subteam^"):
                return label or "@team"
            if target.startswith("!date^"):
                return label
            return "@" + target[1:]
        if target.startswith("mailto:"):
            return label or target[len("mailto:"):]
        if target:
            return target  # a link: its URL, never the label
        return label

    decoded = _TOKEN.sub(token, storable(text))
    return decoded.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def storable(text: str) -> str:
    """`text` without NUL characters, which PostgreSQL refuses in text and jsonb (a signed payload may hold them)."""
    return text.replace("\x00", "")
