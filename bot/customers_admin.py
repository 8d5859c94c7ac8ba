"""Customer profiles and their channel identities: set, tag, link, merge (docs/customers.md).

Keyword-only async functions over a session; the caller owns the transaction::

    async with sm() as s, s.begin():
        await set_profile(s, customer_id=7, vip=True, email="ann@example.com")
        await link_identity(s, customer_id=7, channel="sms", address="+15551230001")
        await merge_customers(s, source_id=9, target_id=7)   # 9's identities and conversations move to 7

Errors (all `CustomerError`, a `ValueError`):

    CustomerError
      + CustomerNotFound     -- no such customer
      + SameCustomer         -- merging a customer with itself
      + AlreadyMerged        -- the customer was merged into another one (use that one)
      + IdentityTaken        -- the address belongs to another customer (merge them instead)
      + InvalidProfileValue  -- an email or phone number that cannot be right
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import phonenumbers
from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot import store
from bot.models import ChannelIdentity, Conversation, Customer
from handoff.pii import redact


class CustomerError(ValueError):
    pass


class CustomerNotFound(CustomerError):
    def __init__(self, customer_id: int) -> None:
        super().__init__(f"no customer {customer_id}")
        self.customer_id = customer_id


class SameCustomer(CustomerError):
    def __init__(self, customer_id: int) -> None:
        super().__init__(f"customer {customer_id} cannot be merged with itself")


class AlreadyMerged(CustomerError):
    def __init__(self, customer_id: int, into: int) -> None:
        super().__init__(f"customer {customer_id} was merged into customer {into}; use {into}")
        self.into = into


class IdentityTaken(CustomerError):
    def __init__(self, channel: str, address: str, owner: int) -> None:
        super().__init__(f"{channel}:{address} belongs to customer {owner}; "
                         f"merge the two customers instead (`switchboard customers merge {owner} <id>`)")
        self.owner = owner


class InvalidProfileValue(CustomerError):
    pass


_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def normalise_email(text: str) -> str:
    value = text.strip()
    if not _EMAIL.fullmatch(value) or len(value) > 320:
        raise InvalidProfileValue(f"{text!r} is not an email address")
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def normalise_phone(text: str, *, region: str = "US") -> str:
    """E.164, or InvalidProfileValue ('+1 (555) 123-0001' -> '+15551230001')."""
    raw = text.strip()
    try:
        parsed = phonenumbers.parse(raw, None if raw.startswith("+") else region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidProfileValue(f"{text!r} is not a phone number") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidProfileValue(f"{text!r} is not a phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_tag(text: str) -> str:
    tag = text.strip().lower().lstrip("#")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_\-:.]{0,63}", tag):
        raise InvalidProfileValue(f"{text!r} is not a tag (letters, digits, - _ : .; up to 64)")
    return tag


async def get_customer(session: AsyncSession, *, customer_id: int, follow: bool = True) -> Customer:
    """The customer (following merges to the surviving profile unless `follow` is false)."""
    seen: set[int] = set()
    cid = customer_id
    while True:
        customer = await session.get(Customer, cid)
        if customer is None:
            raise CustomerNotFound(customer_id)
        if customer.merged_into_id is None or not follow or cid in seen:
            return customer
        seen.add(cid)
        cid = customer.merged_into_id


async def _live(session: AsyncSession, customer_id: int) -> Customer:
    customer = await get_customer(session, customer_id=customer_id, follow=False)
    if customer.merged_into_id is not None:
        raise AlreadyMerged(customer_id, customer.merged_into_id)
    return customer


async def set_profile(
    session: AsyncSession,
    *,
    customer_id: int,
    display_name: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    vip: bool | None = None,
    flagged: bool | None = None,
    notes: str | None = None,
    timezone: str | None = None,
    region: str = "US",
) -> Customer:
    """Set the given fields ('' clears a text field)."""
    customer = await _live(session, customer_id)
    if display_name is not None:
        customer.display_name = display_name.strip()[:200] or None
    if email is not None:
        customer.email = normalise_email(email) if email.strip() else None
    if phone is not None:
        customer.phone = normalise_phone(phone, region=region) if phone.strip() else None
    if vip is not None:
        customer.vip = vip
    if flagged is not None:
        customer.flagged = flagged
    if notes is not None:  # free text agents type: personal data masked as in messages (handoff.pii)
        customer.notes = redact(notes.strip(), region=region) or None
    if timezone is not None:
        customer.timezone = timezone.strip() or None
    await store.log_event(session, kind="customer_updated", conversation_id=None,
                          data={"customer_id": customer.id})
    return customer


async def tag(session: AsyncSession, *, customer_id: int, add: Sequence[str] = (),
              remove: Sequence[str] = ()) -> Customer:
    customer = await _live(session, customer_id)
    tags = list(customer.tags or [])
    for t in (normalise_tag(x) for x in add):
        if t not in tags:
            tags.append(t)
    drop = {normalise_tag(x) for x in remove}
    customer.tags = [t for t in tags if t not in drop]
    return customer


async def link_identity(session: AsyncSession, *, customer_id: int, channel: str, address: str,
                        region: str = "US") -> ChannelIdentity:
    """Give the customer an identity on a channel (an SMS number, an email...). An address that
    already belongs to another customer is refused (`IdentityTaken`): merge them instead."""
    customer = await _live(session, customer_id)
    if channel == "sms":
        address = normalise_phone(address, region=region)
    elif channel == "email":
        address = normalise_email(address)
    address = address.strip()
    if not channel.strip() or not address:
        raise InvalidProfileValue("channel and address are both needed")
    existing = (await session.execute(select(ChannelIdentity).where(
        ChannelIdentity.channel == channel, ChannelIdentity.address == address))).scalar_one_or_none()
    if existing is not None:
        owner = await get_customer(session, customer_id=existing.customer_id)
        if owner.id != customer.id:
            raise IdentityTaken(channel, address, owner.id)
        return existing
    identity = ChannelIdentity(customer_id=customer.id, channel=channel, address=address, meta={"linked": True})
    session.add(identity)
    await session.flush()
    await store.log_event(session, kind="identity_linked", conversation_id=None,
                          data={"customer_id": customer.id, "channel": channel, "identity_id": identity.id})
    return identity


async def merge_customers(session: AsyncSession, *, source_id: int, target_id: int) -> Customer:
    """Fold `source` into `target`: identities and conversations (with every message) move to
    the target; blank profile fields are filled from the source, tags joined, notes appended,
    VIP and flagged kept if either had them. The source stays as a pointer (`merged_into_id`)."""
    if source_id == target_id:
        raise SameCustomer(source_id)
    source, target = await _live(session, source_id), await _live(session, target_id)
    for name in ("display_name", "email", "phone", "timezone"):
        if not getattr(target, name) and getattr(source, name):
            setattr(target, name, getattr(source, name))
    target.vip = bool(target.vip or source.vip)
    target.flagged = bool(target.flagged or source.flagged)
    target.tags = list(dict.fromkeys([*(target.tags or []), *(source.tags or [])]))
    if source.notes:
        target.notes = f"{target.notes}\n{source.notes}" if target.notes else source.notes
    await session.execute(update(ChannelIdentity).where(ChannelIdentity.customer_id == source.id)
                          .values(customer_id=target.id).execution_options(synchronize_session=False))
    await session.execute(update(Conversation).where(Conversation.customer_id == source.id)
                          .values(customer_id=target.id).execution_options(synchronize_session=False))
    source.merged_into_id = target.id
    await session.flush()
    await store.log_event(session, kind="customers_merged", conversation_id=None,
                          data={"from": source.id, "into": target.id})
    return target


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    customer: Customer
    identities: list[ChannelIdentity]
    conversations: list[Conversation]


async def show_customer(session: AsyncSession, *, customer_id: int, limit: int = 20) -> CustomerSummary:
    customer = await get_customer(session, customer_id=customer_id)
    identities = list((await session.execute(select(ChannelIdentity).where(
        ChannelIdentity.customer_id == customer.id).order_by(ChannelIdentity.id))).scalars())
    convs = list((await session.execute(select(Conversation).where(Conversation.customer_id == customer.id)
                                        .order_by(Conversation.id.desc()).limit(limit))).scalars())
    return CustomerSummary(customer, identities, convs)


async def list_customers(session: AsyncSession, *, query: str | None = None, vip: bool | None = None,
                         tag_name: str | None = None, limit: int = 50) -> list[tuple[Customer, int]]:
    """Live (not merged-away) customers, newest first, with their identity counts."""
    stmt: Any = (select(Customer, func.count(ChannelIdentity.id))
                 .outerjoin(ChannelIdentity, ChannelIdentity.customer_id == Customer.id)
                 .where(Customer.merged_into_id.is_(None)).group_by(Customer.id).order_by(Customer.id.desc()))
    if query:
        like = f"%{query.strip().lower()}%"
        stmt = stmt.where(or_(func.lower(Customer.display_name).like(like), func.lower(Customer.email).like(like),
                              Customer.phone.like(like), ChannelIdentity.address.like(like)))
    if vip is not None:
        stmt = stmt.where(Customer.vip.is_(vip))
    rows = [(c, int(n)) for c, n in (await session.execute(stmt.limit(limit * (4 if tag_name else 1)))).all()]
    if tag_name:
        t = normalise_tag(tag_name)
        rows = [(c, n) for c, n in rows if t in (c.tags or [])][:limit]
    return rows


async def find_by_contact(session: AsyncSession, *, email: str | None = None,
                          phone: str | None = None) -> Customer | None:
    """The live customer with this email or phone (profile field or linked identity), if any."""
    if phone:
        ident = (await session.execute(select(ChannelIdentity).where(
            ChannelIdentity.channel == "sms", ChannelIdentity.address == phone))).scalar_one_or_none()
        if ident is not None:
            return await get_customer(session, customer_id=ident.customer_id)
        by_phone = (await session.execute(select(Customer).where(
            Customer.phone == phone, Customer.merged_into_id.is_(None)).limit(1))).scalar_one_or_none()
        if by_phone is not None:
            return by_phone
    if email:
        return (await session.execute(select(Customer).where(
            func.lower(Customer.email) == email.lower(), Customer.merged_into_id.is_(None)).limit(1)
        )).scalar_one_or_none()
    return None
