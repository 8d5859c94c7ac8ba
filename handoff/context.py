"""The context package a supervisor (or agent) receives with a handoff, so nobody asks the customer again.

    pkg = assemble_context(conv, messages, previous=[...], previous_count=3, last_handoff=None,
                           decision=decision, now=now)
    pkg.summary        # ["My order 48213 arrived cracked.", ...]
    pkg.to_dict()      # JSON-safe, for Slack blocks, the dashboard or an API

Pure: the rows come in as plain objects with the fields of `bot.models`' Conversation (with its
customer and identity loaded) and Message. `bot.handoff_context.build_context` reads them from
the database (`bot.store`) and calls `assemble_context`.

What the bot tried comes from inbound `Message.meta["kb"]`, which the pipeline stores as a
`kb_index.types.KbRecord` (query, answered, hits with article id, title, confidence and score).
Without an explicit `decision`, the trigger and evidence come from the newest "handed_off" /
"escalated" event's data (`last_handoff` = `Decision.to_dict()`), falling back to the
conversation's `handoff_reason`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from handoff.pii import mask_email as _mask_email
from handoff.pii import mask_phone as _mask_phone
from handoff.policy import Decision
from handoff.sla import human_duration
from handoff.summary import summarize
from kb_index.types import KbRecord

PREVIOUS_LIMIT = 5


@dataclass(frozen=True)
class PreviousConversation:
    id: int
    channel: str
    state: str
    created_at: datetime
    last_activity_at: datetime  # resolved_at, else updated_at
    handoff_reason: str | None


@dataclass(frozen=True)
class CustomerProfile:
    customer_id: int
    display_name: str | None
    channel: str
    address: str  # masked: "+1******4567", "a1b2c3…", "j***@example.com"
    email: str | None  # masked
    vip: bool
    flagged: bool
    timezone: str | None
    previous_conversations: int  # how many before this one, on any channel
    previous: list[PreviousConversation]  # the newest few, newest first


@dataclass(frozen=True)
class TranscriptLine:
    message_id: int
    at: datetime
    direction: str  # in | out
    author_kind: str  # customer | bot | agent | supervisor | system
    author_name: str | None
    text: str
    internal: bool  # an agent's note: never shown to the customer


@dataclass(frozen=True)
class Suggestion:
    article_id: str
    title: str
    confidence: float
    score: float


@dataclass(frozen=True)
class BotAttempt:
    message_id: int
    at: datetime
    customer_text: str
    query: str
    answered: bool
    suggestions: list[Suggestion]
    top_confidence: float | None


@dataclass(frozen=True)
class ContextPackage:
    conversation_id: int
    channel: str
    state: str
    priority: str
    trigger: str | None
    evidence: str
    customer: CustomerProfile
    transcript: list[TranscriptLine]
    bot_attempts: list[BotAttempt]
    waiting_seconds: float  # since Conversation.handed_off_at (0 before any handoff)
    summary: list[str]
    handed_off_at: datetime | None = None
    generated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: datetimes become ISO 8601 strings."""
        result = _json_safe(asdict(self))
        assert isinstance(result, dict)
        return result

    def to_text(self, *, max_transcript: int = 10) -> str:
        """A plain-text rendering (Slack fallback text, logs, e-mail): header, summary, bot tries, recent lines."""
        c = self.customer
        who = c.display_name or "unknown customer"
        flags = "".join(f" [{f}]" for f, on in (("VIP", c.vip), ("flagged", c.flagged)) if on)
        lines = [
            f"#{self.conversation_id} {self.priority.upper()} via {self.channel} ({self.state}), "
            f"waiting {human_duration(self.waiting_seconds)}",
            f"Customer: {who}{flags}, {c.address}, {c.previous_conversations} previous conversation(s)",
            f"Why: {self.trigger or 'unknown'}" + (f" - {self.evidence}" if self.evidence else ""),
        ]
        if self.summary:
            lines.append("Summary:")
            lines.extend(f"  - {s}" for s in self.summary)
        if self.bot_attempts:
            lines.append("Bot tried:")
            for a in self.bot_attempts:
                best = a.suggestions[0] if a.suggestions else None
                tried = f"{best.title} ({best.confidence:.0%})" if best else "no article"
                lines.append(f"  - {a.query[:80]!r}: {tried}{', answered' if a.answered else ''}")
        recent = self.transcript[-max_transcript:]
        if recent:
            lines.append("Transcript:")
            for t in recent:
                who = t.author_name or t.author_kind
                lines.append(f"  {'[note] ' if t.internal else ''}{who}: {t.text}")
        return "\n".join(lines)


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# ---- masking -------------------------------------------------------------------------------------


def mask_address(channel: str, address: str) -> str:
    """Enough of an address to recognise it, not enough to reuse it.

    >>> mask_address("sms", "+15551234567")
    '+1******4567'
    >>> mask_address("web", "9f2c1ab07d3e44d1")
    '9f2c1a…'
    """
    address = (address or "").strip()
    if not address:
        return ""
    if "@" in address:
        return _mask_email(address)
    if channel in ("sms", "whatsapp", "voice", "phone") or address.startswith("+"):
        return _mask_phone(address)
    if channel == "web":
        return address if len(address) <= 4 else address[: min(6, len(address) // 2)] + "\u2026"
    keep = 4 if len(address) > 8 else max(1, len(address) // 3)
    return "*" * min(8, len(address) - keep) + address[-keep:]


# ---- building ------------------------------------------------------------------------------------


def assemble_context(
    conv: Any,
    messages: Sequence[Any],
    *,
    previous: Sequence[Any],
    previous_count: int,
    last_handoff: Mapping[str, Any] | None,
    decision: Decision | None,
    now: datetime,
) -> ContextPackage:
    """Everything a person needs to take the conversation over, from plain rows.

    `conv` is a conversation row with `customer` and `identity` loaded, `messages` its messages in
    stored order, `previous` the customer's earlier conversations (newest first, at most a few) of
    `previous_count`, `last_handoff` the data of the newest handoff event (read only when
    `decision` is None).
    """
    trigger, evidence, priority = _why(conv, decision, last_handoff)
    waiting = max(0.0, (now - conv.handed_off_at).total_seconds()) if conv.handed_off_at else 0.0
    return ContextPackage(
        conversation_id=conv.id,
        channel=conv.channel,
        state=conv.state,
        priority=priority,
        trigger=trigger,
        evidence=evidence,
        customer=_profile(conv, previous, previous_count),
        transcript=[_line(m) for m in messages],
        bot_attempts=[a for a in (_attempt(m) for m in messages) if a is not None],
        waiting_seconds=waiting,
        summary=summarize([m.text for m in messages if _from_customer(m)]),
        handed_off_at=conv.handed_off_at,
        generated_at=now,
    )


def _why(conv: Any, decision: Decision | None, last_handoff: Mapping[str, Any] | None) -> tuple[str | None, str, str]:
    if decision is not None:
        return decision.trigger, decision.evidence, decision.priority
    data = last_handoff if isinstance(last_handoff, Mapping) else {}
    trigger = data.get("trigger") or conv.handoff_reason
    return trigger, str(data.get("evidence") or ""), conv.priority


def _profile(conv: Any, previous: Sequence[Any], count: int) -> CustomerProfile:
    customer, identity = conv.customer, conv.identity
    return CustomerProfile(
        customer_id=customer.id,
        display_name=customer.display_name,
        channel=identity.channel,
        address=mask_address(identity.channel, identity.address),
        email=_mask_email(customer.email) if customer.email else None,
        vip=bool(customer.vip),
        flagged=bool(customer.flagged),
        timezone=customer.timezone,
        previous_conversations=count,
        previous=[
            PreviousConversation(
                id=p.id,
                channel=p.channel,
                state=p.state,
                created_at=p.created_at,
                last_activity_at=p.resolved_at or p.updated_at,
                handoff_reason=p.handoff_reason,
            )
            for p in previous
        ],
    )


def _from_customer(m: Any) -> bool:
    return m.direction == "in" and m.author_kind == "customer" and not m.internal


def _line(m: Any) -> TranscriptLine:
    return TranscriptLine(
        message_id=m.id,
        at=m.created_at,
        direction=m.direction,
        author_kind=m.author_kind,
        author_name=m.author_name,
        text=m.text,
        internal=bool(m.internal),
    )


def _attempt(m: Any) -> BotAttempt | None:
    kb = KbRecord.from_meta(m.meta, text=m.text) if m.direction == "in" else None
    if kb is None:
        return None
    suggestions = [
        Suggestion(article_id=h.article_id, title=h.title or "", confidence=h.confidence or 0.0, score=h.score or 0.0)
        for h in kb.hits
    ]
    return BotAttempt(
        message_id=m.id,
        at=m.created_at,
        customer_text=m.text,
        query=kb.query,
        answered=bool(kb.answered),
        suggestions=suggestions,
        top_confidence=max((s.confidence for s in suggestions), default=None),
    )
