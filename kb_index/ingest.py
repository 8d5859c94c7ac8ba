"""Reading sources into articles: Markdown (+ YAML front matter), HTML, CSV/JSONL FAQs and the
evaluation JSONL format. A malformed file yields an ``IngestError`` (file, line, message) and the
rest of the folder is still read. A file over ``max_bytes`` (default `MAX_FILE_BYTES`; the CLI passes
KB_MAX_FILE_MB) is refused before it is read, with its size; ``progress`` shows a bar of files and
megabytes read."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from tqdm import tqdm

from kb_index.errors import IngestError

MARKDOWN = {".md", ".markdown"}
HTML = {".html", ".htm"}
SUFFIXES = MARKDOWN | HTML | {".csv", ".jsonl"}
SKIP_NAMES = {"readme.md", "license.md", "changelog.md"}  # a folder's own notes, not articles
MAX_FILE_BYTES = 10 * 1024 * 1024  # an HTML page of 50 MB took 0.9 GB of memory to parse and was killed


@dataclass(slots=True)
class Article:
    """One answerable unit: its text (``body``, Markdown-ish) and the questions it answers."""

    id: str
    title: str
    body: str = ""
    questions: list[str] = field(default_factory=list)
    url: str | None = None
    tags: list[str] = field(default_factory=list)
    source: str = ""

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for part in (self.title, self.body, self.url or "", *self.questions):
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()[:16]


def slugify(text: str, *, max_len: int = 80) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:max_len].strip("-") or "article"


def read_sources(sources: Path | Sequence[Path], *, max_bytes: int = MAX_FILE_BYTES,
                 progress: bool = False) -> tuple[list[Article], list[IngestError]]:
    """Read every supported file under ``sources`` (files or folders), sorted, ids made unique."""
    roots = [sources] if isinstance(sources, Path | str) else list(sources)
    articles: list[Article] = []
    errors: list[IngestError] = []
    found: list[tuple[Path, Path]] = []
    for root in roots:
        root = Path(root)
        if root.is_file():
            files = [(root, root.parent)]
        elif root.is_dir():
            files = [
                (p, root)
                for p in sorted(root.rglob("*"))
                if p.is_file()
                and p.suffix.lower() in SUFFIXES
                and p.name.lower() not in SKIP_NAMES
                and not any(part.startswith(".") for part in p.relative_to(root).parts)
            ]
        else:
            errors.append(IngestError(str(root), None, "no such file or folder"))
            continue
        found.extend(files)
    sizes = [_size(p) for p, _ in found]
    with tqdm(total=sum(sizes), desc="reading", unit="B", unit_scale=True, disable=not progress,
              leave=False) as bar:
        for (path, base), size in zip(found, sizes, strict=True):
            bar.set_postfix_str(path.name[-40:])
            try:
                if size > max_bytes:
                    raise IngestError(str(path), None, f"{size / 2**20:.1f} MB is over the {max_bytes / 2**20:.1f} MB "
                                                       "limit (KB_MAX_FILE_MB): split it into articles, or raise it")
                got, errs = read_file(path, base=base)
            except IngestError as exc:
                errors.append(exc)
                continue
            finally:
                bar.update(size)
            articles.extend(got)
            errors.extend(errs)
    seen: dict[str, str] = {}
    unique: list[Article] = []
    for a in articles:
        if a.id in seen:
            errors.append(
                IngestError(a.source, None, f"duplicate article id {a.id!r} (first in {seen[a.id]}); skipped")
            )
            continue
        seen[a.id] = a.source
        unique.append(a)
    return unique, errors


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def read_file(path: Path, *, base: Path) -> tuple[list[Article], list[IngestError]]:
    """Articles in one file, plus per-line errors for formats with many records per file."""
    suffix = path.suffix.lower()
    name = str(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise IngestError(name, line, f"not valid UTF-8 ({exc.reason})") from exc
    except OSError as exc:
        raise IngestError(name, None, str(exc)) from exc
    rel_slug = slugify(str(path.relative_to(base).with_suffix("")).replace("/", "-"))
    if suffix in MARKDOWN:
        return [read_markdown(text, file=name, default_id=rel_slug)], []
    if suffix in HTML:
        return [read_html(text, file=name, default_id=rel_slug)], []
    if suffix == ".csv":
        return read_csv_faq(text, file=name, prefix=rel_slug)
    if suffix == ".jsonl":
        return read_jsonl(text, file=name, prefix=rel_slug)
    raise IngestError(name, None, f"unsupported file type {suffix!r}")


# --- Markdown --------------------------------------------------------------------------------


def read_markdown(text: str, *, file: str, default_id: str) -> Article:
    meta: dict[str, Any] = {}
    body = text
    lines = text.split("\n")
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is None:
            raise IngestError(file, 1, "front matter opened with '---' is never closed")
        try:
            loaded = yaml.safe_load("\n".join(lines[1:end])) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 2 if mark is not None else 1
            problem = getattr(exc, "problem", None) or str(exc)
            raise IngestError(file, line, f"invalid YAML front matter: {problem}") from exc
        if not isinstance(loaded, dict):
            raise IngestError(file, 2, "front matter must be a mapping of key: value")
        meta = loaded
        body = "\n".join(lines[end + 1 :])
    title = meta.get("title")
    if not title:
        m = re.search(r"^#\s+(.+)$", body, flags=re.M)
        title = m.group(1).strip() if m else Path(file).stem.replace("-", " ").replace("_", " ").capitalize()
    if title and re.match(r"^#\s+" + re.escape(str(title)) + r"\s*$", body.lstrip().split("\n", 1)[0]):
        body = body.lstrip().split("\n", 1)[1] if "\n" in body.lstrip() else ""
    questions = meta.get("questions") or []
    if isinstance(questions, str):
        questions = [questions]
    if not isinstance(questions, list):
        raise IngestError(file, 2, "front matter 'questions' must be a list of strings")
    tags = meta.get("tags") or []
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    return Article(
        id=str(meta.get("id") or default_id),
        title=str(title),
        body=body.strip(),
        questions=[str(q).strip() for q in questions if str(q).strip()],
        url=str(meta["url"]) if meta.get("url") else None,
        tags=[str(t) for t in tags],
        source=file,
    )


# --- HTML ------------------------------------------------------------------------------------

BOILERPLATE = [
    "nav",
    "header",
    "footer",
    "aside",
    "script",
    "style",
    "noscript",
    "form",
    "svg",
    "iframe",
    "template",
]


def read_html(text: str, *, file: str, default_id: str) -> Article:
    from bs4 import BeautifulSoup  # noqa: PLC0415 heavy: BeautifulSoup loads only for HTML articles
    from bs4.element import NavigableString  # noqa: PLC0415 heavy: as above

    soup: Any = BeautifulSoup(text, "html.parser")  # bs4's overloads are too narrow for this use
    page_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    meta_id = soup.find("meta", attrs={"name": "kb-id"})
    canonical = soup.find("link", attrs={"rel": "canonical"})
    for tag in soup.find_all(BOILERPLATE):
        tag.decompose()
    for tag in soup.find_all(attrs={"role": ["navigation", "banner", "contentinfo", "complementary"]}):
        tag.decompose()
    main = soup.find("main") or soup.find("article") or soup.find(attrs={"role": "main"}) or soup.body or soup
    h1 = main.find("h1")
    title = h1.get_text(" ", strip=True) if h1 else page_title or Path(file).stem
    if h1:
        h1.decompose()
    for level in range(2, 7):
        for h in main.find_all(f"h{level}"):
            h.replace_with(NavigableString(f"\n\n{'#' * level} {h.get_text(' ', strip=True)}\n\n"))
    for li in main.find_all("li"):
        li.insert_before(NavigableString("\n- "))
    for br in main.find_all("br"):
        br.replace_with(NavigableString("\n"))
    for block in main.find_all(["p", "div", "section", "ul", "ol", "table", "tr", "pre", "blockquote"]):
        block.insert_before(NavigableString("\n\n"))
        block.insert_after(NavigableString("\n\n"))
    raw = main.get_text("")
    paras = [re.sub(r"[ \t\r\f\v]+", " ", p).strip() for p in re.split(r"\n\s*\n", raw)]
    body = "\n\n".join(re.sub(r"\s*\n\s*", "\n", p) for p in paras if p)
    return Article(
        id=str(meta_id["content"]) if meta_id and meta_id.get("content") else default_id,
        title=title,
        body=body,
        url=str(canonical["href"]) if canonical and canonical.get("href") else None,
        source=file,
    )


# --- CSV and JSONL FAQs --------------------------------------------------------------------------

Q_COLS = ("question", "questions", "q")
A_COLS = ("answer", "a", "body")


def read_csv_faq(text: str, *, file: str, prefix: str) -> tuple[list[Article], list[IngestError]]:
    """Rows of question/answer; rows sharing an ``id`` (or the same answer) become one article.
    A question cell may hold several phrasings separated by ``|`` or new lines."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    qcol = next((c for c in Q_COLS if c in header), None)
    acol = next((c for c in A_COLS if c in header), None)
    if qcol is None or acol is None:
        raise IngestError(file, 1, f"CSV header needs a question and an answer column, found {header}")
    reader.fieldnames = header
    records: list[tuple[int, dict[str, Any]]] = []
    errors: list[IngestError] = []
    line = 1
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                errors.append(
                    IngestError(
                        file, line, f"row has {len(header) + len(row[None])} cells, header has {len(header)}"
                    )
                )
                continue
            q = (row.get(qcol) or "").strip()
            a = (row.get(acol) or "").strip()
            if not q or not a:
                errors.append(IngestError(file, line, "empty question or answer"))
                continue
            records.append((line, {"questions": re.split(r"\s*(?:\||\n)\s*", q), "answer": a, **_extra(row)}))
    except csv.Error as exc:
        errors.append(IngestError(file, reader.line_num or line, f"CSV error: {exc}"))
    return _group_faq(records, file=file, prefix=prefix), errors


def _extra(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: row[k].strip() for k in ("id", "title", "url") if isinstance(row.get(k), str) and row[k].strip()
    }


def read_jsonl(text: str, *, file: str, prefix: str) -> tuple[list[Article], list[IngestError]]:
    """Either the evaluation format ``{"id","title","body","questions"}`` or FAQ records
    ``{"question"|"questions", "answer", ["id","title","url"]}``, one JSON object per line."""
    articles: list[Article] = []
    faq: list[tuple[int, dict[str, Any]]] = []
    errors: list[IngestError] = []
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(IngestError(file, n, f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        if not isinstance(obj, dict):
            errors.append(IngestError(file, n, "each line must be a JSON object"))
            continue
        if "answer" in obj:
            qs = obj.get("questions", obj.get("question"))
            qs = [qs] if isinstance(qs, str) else qs
            if not isinstance(qs, list) or not qs or not str(obj["answer"]).strip():
                errors.append(IngestError(file, n, "FAQ record needs a non-empty 'question(s)' and 'answer'"))
                continue
            faq.append((n, {"questions": [str(q) for q in qs], "answer": str(obj["answer"]), **_extra(obj)}))
        elif "id" in obj and ("body" in obj or "questions" in obj):
            qs = obj.get("questions") or []
            if not isinstance(qs, list):
                errors.append(IngestError(file, n, "'questions' must be a list"))
                continue
            articles.append(
                Article(
                    id=str(obj["id"]),
                    title=str(obj.get("title") or obj["id"]),
                    body=str(obj.get("body") or ""),
                    questions=[str(q).strip() for q in qs if str(q).strip()],
                    url=obj.get("url") or None,
                    tags=list(obj.get("tags") or []),
                    source=file,
                )
            )
        else:
            errors.append(
                IngestError(
                    file, n, "expected an article {id, title, body, questions} or FAQ {question, answer}"
                )
            )
    return articles + _group_faq(faq, file=file, prefix=prefix), errors


def _group_faq(records: Iterable[tuple[int, dict[str, Any]]], *, file: str, prefix: str) -> list[Article]:
    groups: dict[str, Article] = {}
    for _line, r in records:
        key = r.get("id") or "answer:" + r["answer"]
        art = groups.get(key)
        qs = [q.strip() for q in r["questions"] if q.strip()]
        if art is None:
            aid = r.get("id") or f"{prefix}-{slugify(qs[0], max_len=60)}"
            art = Article(
                id=aid, title=r.get("title") or qs[0], body=r["answer"], url=r.get("url"), source=file
            )
            groups[key] = art
        art.questions.extend(q for q in qs if q not in art.questions)
    return list(groups.values())
