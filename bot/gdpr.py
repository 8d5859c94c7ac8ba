"""A person's rights over their data (GDPR articles 15 and 17): export everything we hold, erase it.

    data = await export_customer(session, customer_id=7, redactor=redactor, actor="cli")
    text = export_json(data)  # the one serialisation: `customers export` and the console's download
    result = await erase_customer(session, customer_id=7, actor="cli", slack=True)

Both run inside the caller's transaction and write one audit entry (bot.audit) with counts, never data.
Erasure anonymises in place rather than deleting, so report figures (conversations, events, CSAT scores)
stay as they were: the profile and identities lose every contact detail, every message in the person's
conversations becomes "[erased]" (meta keeps only what reports count), outbox payloads are emptied and
pending ones cancelled, event data loses free text, and KB phrasings learned from their words are deleted.
The bot's own Slack posts in their threads are rewritten to "[erased]" by one ``slack.erase`` outbox entry
per conversation (delivered by bot.desk.slack_deliver through chat.update).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import audit, store
from bot.csat_models import CsatSurvey
from bot.customers_admin import CustomerError, find_by_contact, get_customer, normalise_email, normalise_phone
from bot.models import ChannelIdentity, Conversation, Customer, Event, Message, OutboxEntry, OutboxStatus
from bot.privacy import Redactor
from bot.slack_models import SlackThread
from kb_index.models import KBPhrasing
from kb_index.types import HitRecord, KbRecord

ERASED = "[erased]"
# Event data and message meta keep only what reports and the gaps report count, never free text.
_EVENT_TEXT_KEYS = ("text", "evidence", "comment", "query")
_META_KEEP = ("csat", "kb_article", "confidence", "handoff_notice", "via", "suggestion", "edited")


class NoSuchPerson(CustomerError):
    def __init__(self, what: str) -> None:
        super().__init__(f"no customer with {what}")


async def find_person(
    session: AsyncSession, *, customer_id: int | None = None, phone: str | None = None,
    email: str | None = None, region: str = "US",
) -> Customer:
    """The live customer named by id, phone (identity or profile) or email. Raises a CustomerError."""
    if customer_id is not None:
        return await get_customer(session, customer_id=customer_id)
    if phone:
        number = normalise_phone(phone, region=region)
        found = await find_by_contact(session, phone=number)
        if found is None:
            raise NoSuchPerson("that phone number")
        return found
    if email:
        found = await find_by_contact(session, email=normalise_email(email))
        if found is None:
            raise NoSuchPerson("that email address")
        return found
    raise CustomerError("name the customer: an id, --phone or --email")


async def _held(session: AsyncSession, customer: Customer) -> tuple[list[Customer], list[ChannelIdentity],
                                                                   list[Conversation]]:
    """The person's profile (and any profiles merged into it), identities and conversations."""
    profiles = [customer, *(await session.execute(select(Customer).where(
        Customer.merged_into_id == customer.id).order_by(Customer.id))).scalars()]
    ids = [p.id for p in profiles]
    idents = list((await session.execute(select(ChannelIdentity).where(
        ChannelIdentity.customer_id.in_(ids)).order_by(ChannelIdentity.id))).scalars())
    convs = list((await session.execute(select(Conversation).where(
        or_(Conversation.customer_id.in_(ids), Conversation.identity_id.in_([i.id for i in idents] or [-1])))
        .order_by(Conversation.id))).scalars())
    return profiles, idents, convs


def _outbox_filter(conv_ids: list[int], idents: list[ChannelIdentity]) -> Any:
    keys = [f"{i.channel}:{i.address}" for i in idents]
    return or_(OutboxEntry.conversation_id.in_(conv_ids or [-1]), OutboxEntry.order_key.in_(keys or ["-"]))


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _row(obj: Any, *names: str) -> dict[str, Any]:
    return {n: _iso(getattr(obj, n)) for n in names}


async def export_customer(
    session: AsyncSession, *, customer_id: int, redactor: Redactor, actor: str
) -> dict[str, Any]:
    """Everything we hold on the person, as JSON-safe data (kept personal data decrypted: it is theirs)."""
    customer = await get_customer(session, customer_id=customer_id)
    profiles, idents, convs = await _held(session, customer)
    conv_ids = [c.id for c in convs]
    messages = list((await session.execute(select(Message).where(Message.conversation_id.in_(conv_ids or [-1]))
                                            .order_by(Message.id))).scalars())
    events = list((await session.execute(select(Event).where(Event.conversation_id.in_(conv_ids or [-1]))
                                          .order_by(Event.id))).scalars())
    surveys = list((await session.execute(select(CsatSurvey).where(
        CsatSurvey.conversation_id.in_(conv_ids or [-1])).order_by(CsatSurvey.id))).scalars())
    outbox = list((await session.execute(select(OutboxEntry).where(_outbox_filter(conv_ids, idents))
                                          .order_by(OutboxEntry.id))).scalars())
    data = {
        "customer_id": customer.id,
        "profiles": [_row(p, "id", "display_name", "email", "phone", "vip", "flagged", "tags", "notes", "timezone",
                          "created_at", "merged_into_id") for p in profiles],
        "identities": [_row(i, "id", "customer_id", "channel", "address", "opted_out", "opted_out_at", "meta",
                            "created_at") for i in idents],
        "conversations": [_row(c, "id", "channel", "state", "priority", "tags", "handoff_reason", "assignee_name",
                               "created_at", "handed_off_at", "first_human_response_at", "resolved_at")
                          for c in convs],
        "messages": [{**_row(m, "id", "conversation_id", "channel", "direction", "author_kind", "author_name",
                             "internal", "delivery_status", "meta", "created_at"),
                      "text": redactor.original(m.text, m.sealed_text)} for m in messages],
        "events": [_row(e, "id", "conversation_id", "kind", "at", "data") for e in events],
        "csat": [_row(s, "id", "conversation_id", "channel", "status", "score", "comment", "sent_at", "answered_at")
                 for s in surveys],
        "deliveries": [_row(o, "id", "channel", "kind", "status", "attempts", "payload", "platform_id",
                            "created_at", "delivered_at") for o in outbox],
    }
    await audit.record(session, actor=actor, action="customer.export", target_kind="customer",
                       target_id=customer.id, detail={"conversations": len(convs), "messages": len(messages)})
    return data


def export_json(data: dict[str, Any]) -> str:
    """An export as the person receives it: indented UTF-8 JSON (their words as written, not escaped)."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True, slots=True)
class Erasure:
    customer_id: int
    profiles: int
    identities: int
    conversations: int
    messages: int
    deliveries: int
    events: int
    phrasings: int
    slack_posts: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def bare_meta(meta: dict[str, Any] | None) -> dict[str, Any]:
    """Message meta without free text: what reports count (answered or not, article ids) stays."""
    meta = meta or {}
    out = {k: meta[k] for k in _META_KEEP if k in meta}
    kb = KbRecord.from_meta(meta)
    if kb is not None:
        out["kb"] = KbRecord(query=ERASED, answered=kb.answered,
                             hits=tuple(HitRecord(h.article_id) for h in kb.hits)).to_meta()
    decision = meta.get("decision")
    if isinstance(decision, dict):
        out["decision"] = {k: decision.get(k) for k in ("trigger", "target", "priority")}
    return out


def bare_event_data(data: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (data or {}).items() if k not in _EVENT_TEXT_KEYS}


async def _slack_posts(session: AsyncSession, conv_id: int) -> list[dict[str, str]]:
    thread = (await session.execute(select(SlackThread).where(SlackThread.conversation_id == conv_id))
              ).scalar_one_or_none()
    if thread is None:
        return []
    posts = []
    if thread.card_ts:
        posts.append({"channel": thread.channel_id, "ts": thread.card_ts, "kind": "card"})
    if thread.esc_ts and thread.esc_channel_id:
        posts.append({"channel": thread.esc_channel_id, "ts": thread.esc_ts, "kind": "escalation"})
    entries = (await session.execute(select(OutboxEntry).where(
        OutboxEntry.conversation_id == conv_id, OutboxEntry.channel == "slack", OutboxEntry.kind == "slack.post",
        OutboxEntry.platform_id.is_not(None)).order_by(OutboxEntry.id))).scalars()
    for e in entries:
        esc = (e.payload or {}).get("target") == "esc"
        channel = thread.esc_channel_id if esc else thread.channel_id
        if channel and e.platform_id:
            posts.append({"channel": channel, "ts": e.platform_id, "kind": "post"})
    return posts


async def erase_customer(session: AsyncSession, *, customer_id: int, actor: str, slack: bool) -> Erasure:
    """Irreversibly anonymise the person everywhere we own their data (see the module docstring)."""
    customer = await get_customer(session, customer_id=customer_id)
    profiles, idents, convs = await _held(session, customer)
    conv_ids = [c.id for c in convs]
    messages = list((await session.execute(select(Message).where(
        Message.conversation_id.in_(conv_ids or [-1])))).scalars())
    # KB phrasings learned from their words: the stored question is the message text (masked at the door).
    theirs = {m.text for m in messages if m.author_kind == "customer"} | {
        kb.query for m in messages if (kb := KbRecord.from_meta(m.meta)) is not None and kb.query}
    phrasings = 0
    if theirs:
        gone = await session.execute(delete(KBPhrasing).where(KBPhrasing.question.in_(sorted(theirs)))
                                     .execution_options(synchronize_session=False))
        phrasings = int(getattr(gone, "rowcount", 0) or 0)
    slack_posts = 0
    if slack:
        for conv in convs:
            posts = await _slack_posts(session, conv.id)
            if posts:
                slack_posts += len(posts)
                await store.enqueue(session, channel="slack", kind="slack.erase", order_key=f"slack:erase:{conv.id}",
                                    conversation_id=conv.id, payload={"posts": posts})
    for m in messages:
        m.text, m.sealed_text, m.meta = ERASED, None, bare_meta(m.meta)
        if m.author_kind == "customer":
            m.author_name = None
        if m.direction == "in" and m.platform_id:
            m.platform_id = f"erased:{m.id}"
    outbox = list((await session.execute(select(OutboxEntry).where(_outbox_filter(conv_ids, idents))
                                          .where(OutboxEntry.kind != "slack.erase"))).scalars())
    for o in outbox:
        if o.status in (OutboxStatus.PENDING, OutboxStatus.SENDING):
            o.status = OutboxStatus.CANCELLED
        o.payload, o.last_error = {"erased": True}, None
        o.order_key = f"erased:{o.conversation_id or o.id}"
    events = list((await session.execute(select(Event).where(Event.conversation_id.in_(conv_ids or [-1])))).scalars())
    for e in events:
        if any(k in (e.data or {}) for k in _EVENT_TEXT_KEYS):
            e.data = bare_event_data(e.data)
    await session.execute(update(CsatSurvey).where(CsatSurvey.conversation_id.in_(conv_ids or [-1]))
                          .values(comment=None).execution_options(synchronize_session=False))
    for i in idents:
        i.address, i.meta = f"erased:{i.id}", {}
    for p in profiles:
        p.display_name = p.email = p.phone = p.notes = p.timezone = None
        p.tags = []
    result = Erasure(customer.id, len(profiles), len(idents), len(convs), len(messages), len(outbox), len(events),
                     phrasings, slack_posts)
    await session.flush()
    await audit.record(session, actor=actor, action="customer.erase", target_kind="customer",
                       target_id=customer.id, detail=result.as_dict())
    return result
