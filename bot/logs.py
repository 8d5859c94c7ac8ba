"""Structured logs: one JSON object per line on stderr (``LOG_FORMAT=json``, the default for
`switchboard serve` and `switchboard worker`; ``LOG_FORMAT=text`` for a terminal).

Each line has ``ts``, ``level``, ``logger``, ``msg``, ``pid`` and whichever ids the call passed in
``extra=`` (`ID_FIELDS`): conversation, message, outbox entry, channel, reason. Message text is
never logged: the code logs ids, and the formatter drops every other ``extra`` key, so a
careless ``extra={"text": ...}`` does not leak a customer's words either.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

ID_FIELDS = ("conversation_id", "message_id", "outbox_id", "channel", "reason", "attempt", "outcome",
             "status", "worker", "version")
NOISY = ("sentence_transformers", "transformers", "httpx", "faiss", "urllib3")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        for key in ID_FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def setup_logging(level: str | None = None, fmt: str | None = None) -> None:
    """Configure the root logger once for a web or worker process (uvicorn's loggers propagate to it)."""
    fmt = (fmt or os.environ.get("LOG_FORMAT", "json")).lower()
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO"))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


__all__ = ["JsonFormatter", "setup_logging", "ID_FIELDS"]
