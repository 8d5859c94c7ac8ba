"""The context card's "Customer profile" button, host side: load the form, save what an agent or
supervisor submitted (`bot.customers_admin`), record it in the audit log and tell the thread.

    form = await customer_form(session, conversation_id=42)
    saved = await save_customer_form(session, conversation_id=42, values=values, actor="U123",
                                     region="US")
    saved.errors   # {"email": "'x' is not an email address"}: nothing was changed
    saved.summary  # "VIP on, tags: gold" (what changed, for the thread)

Every field is checked before anything is written, so a bad email never leaves a half-saved profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot import audit
from bot import customers_admin as admin
from bot.models import Conversation
from channels.slack_customer import CustomerForm

AUDIT_ACTION = "customer.update"


@dataclass(frozen=True, slots=True)
class Saved:
    customer_id: int | None = None
    changed: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        parts = []
        for name, value in self.changed.items():
            if name == "vip":
                parts.append(f"VIP {'on' if value else 'off'}")
            elif name == "tags":
                parts.append("tags: " + (", ".join(value) or "none"))
            elif name == "notes":
                parts.append("notes updated" if value else "notes cleared")
            else:
                parts.append(f"{name.replace('display_', '')} {'set' if value else 'cleared'}")
        return ", ".join(parts)


async def customer_form(session: AsyncSession, *, conversation_id: int) -> CustomerForm | None:
    """The profile of conversation `conversation_id`'s customer (after merges); None: no such conversation."""
    conv = await session.get(Conversation, conversation_id)
    if conv is None:
        return None
    c = await admin.get_customer(session, customer_id=conv.customer_id)
    return CustomerForm(conversation_id=conv.id, customer_id=c.id, display_name=c.display_name, email=c.email,
                        phone=c.phone, vip=bool(c.vip), tags=list(c.tags or []), notes=c.notes)


def _check(values: dict[str, Any], region: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Normalised values and the per-field errors."""
    clean: dict[str, Any] = {"vip": bool(values.get("vip"))}
    errors: dict[str, str] = {}
    for name in ("display_name", "email", "phone", "notes"):
        raw = str(values.get(name) or "").strip()
        try:
            if raw and name == "email":
                clean[name] = admin.normalise_email(raw)
            elif raw and name == "phone":
                clean[name] = admin.normalise_phone(raw, region=region)
            else:
                clean[name] = raw or None
        except admin.InvalidProfileValue as exc:
            errors[name] = str(exc)
    tags: list[str] = []
    for raw in values.get("tags") or []:
        try:
            tag = admin.normalise_tag(str(raw))
        except admin.InvalidProfileValue as exc:
            errors["tags"] = str(exc)
            continue
        if tag not in tags:
            tags.append(tag)
    clean["tags"] = tags
    return clean, errors


async def save_customer_form(session: AsyncSession, *, conversation_id: int, values: dict[str, Any], actor: str,
                             region: str = "US") -> Saved:
    """Set the profile of the conversation's customer to `values` (the whole form), in the caller's
    transaction. Returns what changed, or the per-field errors (then nothing is written)."""
    conv = await session.get(Conversation, conversation_id)
    if conv is None:
        return Saved(errors={"conversation": f"there is no conversation #{conversation_id}"})
    clean, errors = _check(values, region)
    if errors:
        return Saved(errors=errors)
    customer = await admin.get_customer(session, customer_id=conv.customer_id)
    old_tags = list(customer.tags or [])
    before = {"vip": bool(customer.vip), "tags": old_tags, "display_name": customer.display_name,
              "email": customer.email, "phone": customer.phone, "notes": customer.notes}
    changed = {k: v for k, v in clean.items() if before[k] != v}
    if not changed:
        return Saved(customer_id=customer.id)

    def text(name: str) -> str | None:  # '' clears a field that was emptied; None leaves it alone
        return (changed[name] or "") if name in changed else None

    await admin.set_profile(session, customer_id=customer.id, region=region, vip=changed.get("vip"),
                            display_name=text("display_name"), email=text("email"), phone=text("phone"),
                            notes=text("notes"))
    if "tags" in changed:
        new_tags: list[str] = clean["tags"]
        await admin.tag(session, customer_id=customer.id, add=new_tags,
                        remove=[t for t in old_tags if t not in new_tags])
    await audit.record(session, actor=actor, action=AUDIT_ACTION, target_kind="customer", target_id=customer.id,
                       detail={"conversation_id": conv.id, "fields": sorted(changed),
                               "vip": clean["vip"], "tags": clean["tags"]})
    return Saved(customer_id=customer.id, changed=changed)
