"""Errors of the KB engine.

* KBIndexError                 base: catch this to handle any KB failure
  + IndexNotFoundError         no index in the folder (``path``)
  + IndexMismatchError         the index was built with another model, dimension or
                               embedding backend
                               (``expected``, ``found``)
  + IngestError                one source file could not be read (``file``, ``line``, ``message``);
                               collected in ``BuildReport.errors`` rather than raised by build_index
  + UnknownArticleError        learn() named an article the index does not hold (``article_id``)
"""

from __future__ import annotations

from pathlib import Path


class KBIndexError(Exception):
    """Base error of the kb_index package."""


class IndexNotFoundError(KBIndexError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"no KB index in {path} (run `switchboard kb ingest` first)")
        self.path = path


class IndexMismatchError(KBIndexError):
    def __init__(self, path: Path, *, field: str, expected: object, found: object) -> None:
        super().__init__(
            f"index in {path} was built with {field}={found!r} but the loaded model has {field}={expected!r}; "
            "rebuild the index (`switchboard kb ingest`) or load the model it was built with"
        )
        self.path = path
        self.field = field
        self.expected = expected
        self.found = found


class IngestError(KBIndexError):
    def __init__(self, file: str, line: int | None, message: str) -> None:
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}")
        self.file = file
        self.line = line
        self.message = message


class UnknownArticleError(KBIndexError):
    def __init__(self, article_id: str) -> None:
        super().__init__(f"no article {article_id!r} in the index")
        self.article_id = article_id
