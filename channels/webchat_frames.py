"""The web chat wire protocol: parse client frames, build server frames (pure functions).

Client -> server (JSON text frames)::

    {"type": "auth", "token": "<session token>"}   (the first frame, exactly once; later ones ignored)
    {"type": "message", "client_id": "<uuid>", "text": "..."}
    {"type": "resume", "after": <last seen message id>}
    {"type": "human"}
    {"type": "typing"}                      (accepted and ignored)

Server -> client::

    {"type": "ready", "token": ..., "expires_at": ...}   (a renewed token: store it)
    {"type": "session", "token": ..., "expires_at": ...} (renewed again once half its lifetime passed)
    {"type": "ack", "client_id": ..., "id": <message id>, "duplicate": bool, "text": <as stored, PII masked>}
    {"type": "history", "after": <id>, "messages": [...], "more": bool, "cursor": <id>}
                                            (cursor: what the next resume sends as `after`; see history_frame)
    {"type": "message", "id", "author_kind", "author_name", "text", "created_at", "options"?, "actions"?}
                                            (options: clarifying-question buttons;
                                             actions: "feedback" | "rating" | "contact": message_actions)
    {"type": "typing", "on": bool}
    {"type": "human", "ok": true}
    {"type": "error", "code": "invalid_session" | "auth_required" | "auth_timeout" | "forbidden_origin"
              | "bad_frame" | "too_long" | "rate_limited" | "server_error", "detail": "...", ...}
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.messages import TranscriptItem

_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Frame:
    type: str  # message | resume | human | typing
    client_id: str | None = None
    text: str | None = None
    after: int = 0


class FrameError(Exception):
    """A frame we refuse; becomes an error frame. The connection stays open."""

    def __init__(self, code: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra

    def to_frame(self) -> dict[str, Any]:
        return {"type": "error", "code": self.code, "detail": self.detail, **self.extra}


def parse_frame(ws_message: dict[str, Any], *, max_chars: int) -> Frame:
    """Turn one ASGI ``websocket.receive`` event into a `Frame`, or raise `FrameError`."""
    raw = ws_message.get("text")
    if raw is None:
        data = ws_message.get("bytes")
        if data is not None:
            raise FrameError("bad_frame", "binary frames are not accepted; send JSON as a text frame")
        raise FrameError("bad_frame", "empty frame")
    # Refuse absurd frames before parsing them (the text itself is limited to max_chars characters,
    # a JSON escape is at most 12 characters per character).
    if len(raw) > max(4096, max_chars * 12 + 1024):
        raise FrameError("too_long", f"messages are limited to {max_chars} characters", limit=max_chars)
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: deeply nested brackets
        raise FrameError("bad_frame", "the frame is not valid JSON") from None
    if not isinstance(obj, dict):
        raise FrameError("bad_frame", "the frame must be a JSON object")
    kind = obj.get("type")
    if kind == "message":
        client_id = obj.get("client_id")
        if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
            raise FrameError("bad_frame", "client_id must be 1-64 characters of A-Z a-z 0-9 _ -")
        text = obj.get("text")
        if not isinstance(text, str):
            raise FrameError("bad_frame", "text must be a string", client_id=client_id)
        if len(text) > max_chars:
            raise FrameError(
                "too_long", f"messages are limited to {max_chars} characters", limit=max_chars, client_id=client_id
            )
        try:
            text.encode("utf-8")  # lone surrogates ("\ud800") survive json.loads but not storage
        except UnicodeEncodeError:
            raise FrameError("bad_frame", "text is not valid Unicode", client_id=client_id) from None
        if "\x00" in text:
            raise FrameError("bad_frame", "text must not contain NUL characters", client_id=client_id)
        if not text.strip():
            raise FrameError("bad_frame", "text is empty", client_id=client_id)
        return Frame("message", client_id=client_id, text=text)
    if kind == "resume":
        after = obj.get("after", 0)
        if after is None:
            after = 0
        if isinstance(after, bool) or not isinstance(after, int) or after < 0 or after > 2**62:
            raise FrameError("bad_frame", "after must be a non-negative integer message id")
        return Frame("resume", after=after)
    if kind in ("human", "typing", "auth"):  # a repeated auth frame is ignored
        return Frame(kind)
    if isinstance(kind, str):
        raise FrameError("bad_frame", f"unknown frame type {kind[:40]!r}")
    raise FrameError("bad_frame", "the frame has no type")


def message_frame(
    *, id: int | None, author_kind: str, author_name: str | None, text: str, created_at: datetime,
    client_id: str | None = None, options: list[str] | None = None, actions: str | None = None,
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "message",
        "id": id,
        "author_kind": author_kind,
        "author_name": author_name,
        "text": text,
        "created_at": created_at.isoformat(),
    }
    if client_id is not None:
        frame["client_id"] = client_id
    if options:
        frame["options"] = options  # buttons; pressing one sends its label as the customer's reply
    if actions is not None:  # "feedback" (👍/👎 on a bot answer) | "rating" (a CSAT survey: 1-5) | "contact"
        frame["actions"] = actions
    return frame


def message_actions(meta: dict[str, Any]) -> str | None:
    """What the widget offers under a message: a CSAT survey's rating, 👍/👎 on a bot answer, or
    (under the handoff notice) an optional "how can we reach you?" form."""
    csat = meta.get("csat")
    if isinstance(csat, dict) and csat.get("survey_id"):
        return "rating"
    if meta.get("handoff_notice"):
        return "contact"
    return "feedback" if meta.get("kb_article") else None


def history_item(item: TranscriptItem, *, platform_prefix: str) -> dict[str, Any]:
    """A stored message as the widget shows it; the customer's own carry their client_id back."""
    client_id = None
    if item.platform_id and item.platform_id.startswith(platform_prefix):
        client_id = item.platform_id[len(platform_prefix):]
    frame = message_frame(
        id=item.id, author_kind=item.author_kind, author_name=item.author_name, text=item.text,
        created_at=item.created_at, client_id=client_id,
    )
    del frame["type"]
    return frame


def history_frame(
    items: Sequence[TranscriptItem], *, after: int, more: bool, platform_prefix: str, now: datetime,
    settle: timedelta,
) -> dict[str, Any]:
    """The answer to ``{"type": "resume", "after": N}``: the stored messages after N, and a `cursor`.

    The cursor is where the client resumes next time. It is not simply the highest id listed: ids are
    handed out when a message is written, not when its transaction commits, so a message written
    just now may still hide a lower id that becomes visible a moment later (PostgreSQL). The cursor
    therefore stops below anything written within `settle` (longer than any transaction that writes a
    message): those are listed again on the next resume and the client drops what it already shows.
    Never below `after`.
    """
    cut = now - settle
    settled = [i.id for i in items if _aware(i.created_at) <= cut]
    return {
        "type": "history", "after": after, "more": more, "cursor": max([after, *settled]),
        "messages": [history_item(i, platform_prefix=platform_prefix) for i in items],
    }


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)
