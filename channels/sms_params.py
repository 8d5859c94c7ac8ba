"""What a signed Twilio webhook must carry, and how its values are made storable. Pure.

The routes in `channels.sms` check, in this order: an ``X-Twilio-Signature`` header (else 403,
nothing read) -> the body size (`MAX_BODY`, else 413, read no further) -> the form -> the signature
over the public URL and every field (else 403) -> `require`: our ``AccountSid`` (else 403) and the
fields Twilio always sends (else 400) -> `clean`, which never refuses: nothing that passed the
signature check is lost. A value no database column can take is made storable and flagged:

- NUL characters (PostgreSQL text and jsonb refuse them) are removed;
- ids and addresses longer than `MAX_ID` (their columns are 255 characters) are cut, with a marker
  and a hash of the whole value, so two long values never collide and a retry maps to the same row;
- the original of every changed field is kept JSON-escaped (no NUL survives) in ``raw``.

    cleaned = clean(params)      # cleaned.params, cleaned.notes ("Body: NUL removed"), cleaned.raw
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

MAX_BODY = 64 * 1024  # Twilio's largest webhook (1,600 characters, 10 media URLs) is a few kB
MAX_ID = 255
LIMITED = ("MessageSid", "SmsSid", "SmsMessageSid", "From", "To", "AccountSid", "MessagingServiceSid")
INBOUND_REQUIRED = ("AccountSid", "MessageSid", "From", "To", "Body")
STATUS_REQUIRED = ("AccountSid", "MessageSid", "MessageStatus")
# Twilio's message statuses (outbound and inbound); anything else in a callback is ignored.
STATUSES = frozenset({"accepted", "scheduled", "queued", "sending", "sent", "delivered", "undelivered", "failed",
                      "read", "canceled", "receiving", "received", "partially_delivered"})


class Rejected(Exception):
    """A signed webhook we answer with `status` (403 foreign account, 400 missing field) and `detail`."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Cleaned:
    params: dict[str, str]
    notes: tuple[str, ...] = ()
    raw: dict[str, str] = field(default_factory=dict)


def require(params: Mapping[str, str], fields: Sequence[str], *, account_sid: str) -> None:
    """Raise `Rejected` unless the webhook is for our account and carries every field (ids non-blank)."""
    missing = [f for f in fields if f not in params or (f != "Body" and not params[f].strip(" \t\r\n\x00"))]
    if "AccountSid" not in missing and params.get("AccountSid") != account_sid:
        raise Rejected(403, "AccountSid is not this account")
    if missing:
        raise Rejected(400, f"missing or empty: {', '.join(missing)}")


def shorten(value: str, limit: int = MAX_ID) -> str:
    """`value` cut to `limit` characters with a marker and the hash of the whole (stable, unique)."""
    if len(value) <= limit:
        return value
    marker = "...#" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return value[: limit - len(marker)] + marker


def clean(params: Mapping[str, str]) -> Cleaned:
    """Every value made storable on SQLite and PostgreSQL; what changed is noted and kept in ``raw``."""
    out: dict[str, str] = {}
    notes: list[str] = []
    raw: dict[str, str] = {}
    for key, value in params.items():
        k = key.replace("\x00", "")
        v = value.replace("\x00", "")
        if v != value or k != key:
            notes.append(f"{k}: NUL removed")
        if k in LIMITED and len(v) > MAX_ID:
            v = shorten(v)
            notes.append(f"{k}: {len(value)} characters cut to {MAX_ID}")
        if v != value or k != key:
            raw[k] = json.dumps(value)  # \u0000 as six characters: storable everywhere
        out[k] = v
    return Cleaned(out, tuple(notes), raw)


def status_of(params: Mapping[str, str]) -> str | None:
    """The callback's status in lower case if Twilio knows it, else None."""
    state = (params.get("MessageStatus") or params.get("SmsStatus") or "").strip().lower()
    return state if state in STATUSES else None


def error_code_of(params: Mapping[str, str]) -> str | None:
    """Twilio's numeric error code (the column holds 32 characters), else None."""
    code = (params.get("ErrorCode") or "").strip()
    return code if code.isascii() and code.isdigit() and len(code) <= 32 else None
