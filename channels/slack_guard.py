"""The checks every Slack HTTP request passes before bolt sees it, in this order:

1. **Size**: a body over `MAX_BODY` bytes (by Content-Length, then by what actually arrives) -> 413,
   read no further.
2. **Signature** on the raw bytes: ``X-Slack-Request-Timestamp`` must be an integer within 5 minutes
   and ``X-Slack-Signature`` the v0 HMAC of ``v0:<ts>:<body>`` -> else 401. Nothing is parsed before this.
3. **Shape** (only for signed requests): ``/slack/events`` must be a UTF-8 JSON object; the form routes
   must be UTF-8 ``application/x-www-form-urlencoded`` and ``payload`` (interactivity) a JSON object ->
   else 400.

Only then does bolt parse the (cached) body, so a malformed request never reaches a listener and never
becomes a 500. Pure functions apart from `read_body`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs

from fastapi import Request

from channels.body_limit import Refused, read_capped

MAX_BODY = 256 * 1024  # Slack's largest payloads (a modal submission) are a few tens of kB
MAX_AGE = 60 * 5


async def read_body(request: Request, *, limit: int = MAX_BODY) -> bytes:
    """The raw body, refusing (413) before reading past `limit` bytes. Cached on the request for bolt."""
    return await read_capped(request, limit=limit)


def verify(secret: str, body: bytes, timestamp: str | None, signature: str | None, *,
           now: float | None = None) -> None:
    """Raise `Refused(401)` unless the request carries a fresh, valid v0 signature over `body`."""
    if not timestamp or not signature:
        raise Refused(401, "missing Slack signature")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise Refused(401, "bad X-Slack-Request-Timestamp")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > MAX_AGE:
        raise Refused(401, "stale Slack request")
    mac = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest("v0=" + mac, signature):
        raise Refused(401, "invalid Slack signature")


def check_shape(path: str, body: bytes) -> None:
    """Raise `Refused(400)` unless a signed body is something bolt can parse without raising."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "the body is not UTF-8") from None
    if path.endswith("/events"):
        _json_object(text)
        return
    try:
        form = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "the body is not a form") from None
    payload = form.get("payload")
    if path.endswith("/interactivity") or payload is not None:  # bolt parses `payload` on any route
        if not payload or len(payload) != 1:
            raise Refused(400, "interactivity needs one payload field")
        _json_object(payload[0])


def _json_object(text: str) -> None:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise Refused(400, "the body is not valid JSON") from None
    if not isinstance(obj, dict):
        raise Refused(400, "the body must be a JSON object")


def parse_id(value: object, *, limit: int = 2**62) -> int | None:
    """A conversation id from a button value or modal metadata: a plain positive integer, else None."""
    s = str(value if value is not None else "").strip()
    if not s.isascii() or not s.isdigit() or len(s) > 19:
        return None
    n = int(s)
    return n if 0 < n <= limit else None
