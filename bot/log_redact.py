"""Keep secrets out of every log line: web chat session tokens, Slack/Twilio credentials in URLs.

`install()` adds `RedactSecrets` to the uvicorn loggers (``uvicorn.access`` writes request lines with their
query strings) and to every handler of the root and uvicorn loggers, so records propagated from any module
are scrubbed too. Idempotent; called by `bot.app.create_app`.
"""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    # a session token anywhere (v1 or v2), and any token=/signature=/secret= query parameter
    re.compile(r"\bv[12]\.[A-Za-z0-9_-]{16,64}(?:\.[0-9]{1,12})?\.[A-Za-z0-9_-]{20,}"),
    re.compile(r"(?i)\b((?:access_)?token|signature|secret|sig|auth)=[^&\s\"']+"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]+"),
)
REDACTED = "[redacted]"
LOGGERS = ("uvicorn", "uvicorn.access", "uvicorn.error", "switchboard")


def redact(text: str) -> str:
    text = _PATTERNS[0].sub(REDACTED, text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)}={REDACTED}", text)
    return _PATTERNS[2].sub(REDACTED, text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_FILTER = RedactSecrets()


def install() -> None:
    for name in (None, *LOGGERS):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
