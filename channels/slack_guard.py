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
from typing import Any
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


def check_shape(path: str, body: bytes, content_type: str | None = None) -> None:
    """Raise `Refused(400)` unless a signed body is something bolt can parse without raising. Bolt reads
    JSON when the Content-Type is exactly application/json or the body starts with ``{``, else a form
    (and a ``payload`` field in it as JSON): the same decision is checked here, then what each route needs."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(400, "the body is not UTF-8") from None
    kind = (content_type or "").split(";")[0]
    if path.endswith("/events") or kind == "application/json" or text.startswith("{"):
        event = _json_object(text)
        if not path.endswith("/events"):
            raise Refused(400, "this route takes a form (application/x-www-form-urlencoded)")
        _typed(event, EVENT_SHAPE, "body")
        return
    try:
        form = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text), errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, "the body is not a form") from None
    for key in FORM_IDS:
        if any(not _is_id(v) for v in form.get(key, ())):
            raise Refused(400, f"{key} must be a Slack id ({MAX_ID} printable ASCII characters at most)")
    payload = form.get("payload")
    if path.endswith("/interactivity") or payload is not None:  # bolt parses `payload` on any route
        if not payload or len(payload) != 1:
            raise Refused(400, "interactivity needs one payload field")
        _typed(_json_object(payload[0]), PAYLOAD_SHAPE, "payload")


def _json_object(text: str) -> dict[str, Any]:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise Refused(400, "the body is not valid JSON") from None
    if not isinstance(obj, dict):
        raise Refused(400, "the body must be a JSON object")
    return obj


class Id(str):
    """A Slack id or timestamp (U0AB12CD, C0.., 1712345678.000100): `MAX_ID` printable ASCII at most,
    so it fits every column it is stored in (author ids are 64 characters)."""


MAX_ID = 40
FORM_IDS = ("user_id", "channel_id", "team_id")

# The fields the listeners read, with their types (absent or null is always fine). A signed request
# whose fields have other types is a 400 here, never a TypeError in a listener or a database error.
_MESSAGE = {"user": Id, "ts": Id, "thread_ts": Id, "text": str, "bot_id": str, "subtype": str}
EVENT_SHAPE: dict[str, Any] = {"type": str, "event_id": Id, "event": {
    "type": str, "subtype": str, "channel": Id, "user": Id, "text": str, "ts": Id, "thread_ts": Id,
    "tab": str, "bot_id": str, "files": list, "message": _MESSAGE, "previous_message": _MESSAGE}}
_INPUTS = ("values", {"value": str})  # view.state.values: {block: {action: {"value": str}}}
PAYLOAD_SHAPE: dict[str, Any] = {
    "type": str, "trigger_id": str, "user": {"id": Id, "name": str, "username": str},
    "channel": {"id": Id}, "container": {"channel_id": Id, "id": Id}, "message": {"ts": Id, "thread_ts": Id},
    "actions": [{"action_id": str, "value": str, "block_id": str}],
    "view": {"id": Id, "callback_id": str, "private_metadata": str, "state": {"values": _INPUTS}},
}


def _is_id(value: str) -> bool:
    return len(value) <= MAX_ID and value.isascii() and value.isprintable()


def _typed(obj: Any, shape: Any, where: str) -> None:
    """Raise `Refused(400)` naming the first field of `obj` that does not have `shape`'s type."""
    if obj is None:
        return
    if shape is Id:
        if not isinstance(obj, str) or not _is_id(obj):
            raise Refused(400, f"{where} must be a Slack id ({MAX_ID} printable ASCII characters at most)")
    elif isinstance(shape, type):
        if not isinstance(obj, shape):
            raise Refused(400, f"{where} must be a {shape.__name__}")
    elif isinstance(shape, list):
        if not isinstance(obj, list):
            raise Refused(400, f"{where} must be a list")
        for i, item in enumerate(obj):
            _typed(item, shape[0], f"{where}[{i}]")
    elif isinstance(shape, tuple):  # ("values", leaf): a dict of dicts of `leaf`
        if not isinstance(obj, dict):
            raise Refused(400, f"{where} must be an object")
        for block, inputs in obj.items():
            if not isinstance(inputs, dict):
                raise Refused(400, f"{where}.{block} must be an object")
            for action, leaf in inputs.items():
                _typed(leaf, shape[1], f"{where}.{block}.{action}")
    else:
        if not isinstance(obj, dict):
            raise Refused(400, f"{where} must be an object")
        for key, inner in shape.items():
            _typed(obj.get(key), inner, f"{where}.{key}")


MAX_ROW_ID = 2**31 - 1  # ids are INTEGER columns: a larger number is a database error on PostgreSQL


def parse_id(value: object, *, limit: int = MAX_ROW_ID) -> int | None:
    """A conversation id from a button value or modal metadata: a plain positive integer, else None."""
    s = str(value if value is not None else "").strip()
    if not s.isascii() or not s.isdigit() or len(s) > 19:
        return None
    n = int(s)
    return n if 0 < n <= limit else None
