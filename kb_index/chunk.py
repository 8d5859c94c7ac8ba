"""Chunking: an article's body is split by headings, then paragraphs (merged up to a size), each
chunk keeping the article title and its section heading as context for the embedding."""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_CHARS = 550  # an answer must stay under ~600 characters to send verbatim


@dataclass(frozen=True, slots=True)
class Passage:
    heading: str  # the section heading ("" for the article's lead)
    text: str  # plain text, fit to send to a customer

    def embed_text(self, title: str) -> str:
        ctx = f"{title}. {self.heading}:" if self.heading and self.heading != title else f"{title}:"
        return f"{ctx} {self.text}"


def plain(markdown: str) -> str:
    """Markdown to plain text a customer can read (links kept as 'text (url)')."""
    s = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", markdown)
    s = re.sub(r"\[([^\]]+)\]\(([^)\s]+)[^)]*\)", r"\1 (\2)", s)
    s = re.sub(r"`{3}[^\n]*\n?", "", s)
    s = re.sub(r"(\*\*|__)(.+?)\1", r"\2", s)
    s = re.sub(r"(?<![\w*])[*_](?!\s)(.+?)(?<!\s)[*_](?![\w*])", r"\1", s)
    s = re.sub(r"`([^`]+)`", r"\1", s)
    s = re.sub(r"^\s{0,3}>\s?", "", s, flags=re.M)
    s = re.sub(r"^\s*[*+]\s+", "- ", s, flags=re.M)
    s = re.sub(r"<[^>]+>", "", s)
    return re.sub(r"[ \t]+", " ", s).strip()


def split_sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", text) if s.strip()]


def chunk(body: str, *, max_chars: int = MAX_CHARS) -> list[Passage]:
    """Split ``body`` into passages of at most ``max_chars`` characters."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    for block in re.split(r"\n\s*\n", body):
        block = block.strip()
        if not block:
            continue
        m = re.match(r"^(#{1,6})\s+(.+?)\s*#*\s*(?:\n|$)", block)
        if m:
            sections.append((plain(m.group(2)), []))
            block = block[m.end() :].strip()
            if not block:
                continue
        if re.match(r"^(-{3,}|\*{3,}|_{3,})$", block):
            continue
        sections[-1][1].append(plain(block))
    out: list[Passage] = []
    for heading, paras in sections:
        pieces: list[str] = []
        for p in paras:
            if len(p) <= max_chars:
                pieces.append(p)
                continue
            cur = ""
            for sent in split_sentences(p):
                while len(sent) > max_chars:  # one enormous sentence: hard wrap at a space
                    cut = sent.rfind(" ", 0, max_chars)
                    cut = cut if cut > 0 else max_chars
                    if cur:
                        pieces.append(cur)
                        cur = ""
                    pieces.append(sent[:cut].strip())
                    sent = sent[cut:].strip()
                if cur and len(cur) + 1 + len(sent) > max_chars:
                    pieces.append(cur)
                    cur = sent
                else:
                    cur = f"{cur} {sent}".strip()
            if cur:
                pieces.append(cur)
        cur = ""
        for piece in pieces:  # merge short neighbouring paragraphs of one section
            if cur and len(cur) + 2 + len(piece) > max_chars:
                out.append(Passage(heading, cur))
                cur = piece
            else:
                cur = f"{cur}\n\n{piece}".strip()
        if cur:
            out.append(Passage(heading, cur))
    return out
