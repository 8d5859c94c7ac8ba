"""A customer gives an email or phone number on one channel (the web chat widget's "how can we reach
you?"), and we link it: to the customer who already has it, or to their own profile.

    result = await link_contact(session, identity=web_identity, phone="+1 415 555 0101")
    # an SMS customer with that number: the web chat customer is merged into them (every message
    # kept), so agents see the SMS history; otherwise the number is saved and a later text from it
    # joins this profile.

Unverified: the customer typed it. The profile records where it came from
(``ChannelIdentity.meta["linked_from"]``) so agents can tell.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot import customers_admin as admin
from bot.models import ChannelIdentity


@dataclass(frozen=True, slots=True)
class LinkResult:
    customer_id: int  # the profile the identity belongs to now
    merged_from: int | None  # the profile folded into it, if any


async def link_contact(session: AsyncSession, *, identity: ChannelIdentity, email: str | None = None,
                       phone: str | None = None, region: str = "US") -> LinkResult:
    """Raises `customers_admin.InvalidProfileValue` for an email or phone that cannot be right."""
    email = admin.normalise_email(email) if email and email.strip() else None
    phone = admin.normalise_phone(phone, region=region) if phone and phone.strip() else None
    if email is None and phone is None:
        raise admin.InvalidProfileValue("give an email address or a phone number")
    mine = await admin.get_customer(session, customer_id=identity.customer_id)
    merged_from: int | None = None
    other = await admin.find_by_contact(session, email=email, phone=phone)
    if other is not None and other.id != mine.id:
        await admin.merge_customers(session, source_id=mine.id, target_id=other.id)
        merged_from, mine = mine.id, other
        # The agents' context marks this identity: it joined that profile on the customer's word alone.
        identity.meta = {**(identity.meta or {}), "claimed": "phone" if phone else "email"}
    await admin.set_profile(session, customer_id=mine.id, email=email if email and not mine.email else None,
                            phone=phone if phone and not mine.phone else None, region=region)
    if phone:
        sms = (await session.execute(select(ChannelIdentity).where(
            ChannelIdentity.channel == "sms", ChannelIdentity.address == phone))).scalar_one_or_none()
        if sms is None:
            session.add(ChannelIdentity(customer_id=mine.id, channel="sms", address=phone,
                                        meta={"linked_from": identity.channel}))
            await session.flush()
    return LinkResult(customer_id=mine.id, merged_from=merged_from)
