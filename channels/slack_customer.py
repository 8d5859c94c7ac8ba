"""The customer profile on Slack: a "Customer profile" button on the context card opens a modal
(VIP, tags, name, email, phone, notes); its submission sets the profile (`bot.desk.customer_card`).

    customer_actions(42)                     # the context card's actions block
    customer_modal(form, channel=..., thread_ts=...)
    values = read_customer_form(view)        # {"vip": bool, "tags": [...], "display_name": str, ...}

Pure functions; block ids name the fields, so the host can return an error per field
(``{"email": "'x' is not an email address"}`` -> the modal shows it under Email).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from channels.slack_blocks import button, clip, context_block

A_CUSTOMER = "sb_customer"  # value: conversation id
V_CUSTOMER = "sb_customer_view"
FIELDS = ("vip", "tags", "display_name", "email", "phone", "notes")
_TEXT = {"display_name": ("Name", 200, False), "email": ("Email", 320, False), "phone": ("Phone", 40, False),
         "tags": ("Tags (comma-separated)", 600, False), "notes": ("Notes (for the team)", 3000, True)}


@dataclass(frozen=True, slots=True)
class CustomerForm:
    """What the modal opens with."""

    conversation_id: int
    customer_id: int
    display_name: str | None = None
    email: str | None = None
    phone: str | None = None
    vip: bool = False
    tags: list[str] = field(default_factory=list)
    notes: str | None = None


def block_id(name: str) -> str:
    return f"sb_c_{name}"


def customer_actions(conversation_id: int) -> dict[str, Any]:
    cid = str(conversation_id)
    return {"type": "actions", "block_id": f"customer:{cid}",
            "elements": [button("Customer profile\u2026", A_CUSTOMER, cid)]}


def _text_input(name: str, initial: str | None) -> dict[str, Any]:
    label, limit, multiline = _TEXT[name]
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": name, "max_length": limit,
                               "multiline": multiline}
    if initial:
        element["initial_value"] = clip(initial, limit)
    return {"type": "input", "block_id": block_id(name), "optional": True,
            "label": {"type": "plain_text", "text": label}, "element": element}


def customer_modal(form: CustomerForm, *, channel: str | None, thread_ts: str | None) -> dict[str, Any]:
    vip_option = {"text": {"type": "plain_text", "text": "VIP"}, "value": "vip",
                  "description": {"type": "plain_text", "text": "Routes to the VIP route; handed off at once"}}
    vip: dict[str, Any] = {"type": "checkboxes", "action_id": "vip", "options": [vip_option]}
    if form.vip:
        vip["initial_options"] = [vip_option]
    metadata = {"c": form.conversation_id, "cu": form.customer_id, "ch": channel, "th": thread_ts}
    return {
        "type": "modal", "callback_id": V_CUSTOMER,
        "private_metadata": json.dumps(metadata, separators=(",", ":")),
        "title": {"type": "plain_text", "text": "Customer profile"},
        "submit": {"type": "plain_text", "text": "Save"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "input", "block_id": block_id("vip"), "optional": True,
             "label": {"type": "plain_text", "text": "Status"}, "element": vip},
            _text_input("tags", ", ".join(form.tags)),
            _text_input("display_name", form.display_name),
            _text_input("email", form.email),
            _text_input("phone", form.phone),
            _text_input("notes", form.notes),
            context_block(f"Customer {form.customer_id}. An empty field clears it. Every change is in the audit log."),
        ],
    }


def read_customer_form(view: dict[str, Any]) -> dict[str, Any]:
    """The submitted values: vip (bool), tags (list of str), and the text fields ('' when empty)."""
    values = (view.get("state") or {}).get("values") or {}

    def element(name: str) -> dict[str, Any]:
        found = (values.get(block_id(name)) or {}).get(name)
        return found if isinstance(found, dict) else {}

    out: dict[str, Any] = {"vip": any(isinstance(o, dict) and o.get("value") == "vip"
                                      for o in element("vip").get("selected_options") or [])}
    for name in ("display_name", "email", "phone", "notes"):
        out[name] = str(element(name).get("value") or "").strip()
    out["tags"] = [t.strip() for t in str(element("tags").get("value") or "").split(",") if t.strip()]
    return out


__all__ = ["A_CUSTOMER", "V_CUSTOMER", "CustomerForm", "block_id", "customer_actions", "customer_modal",
           "read_customer_form"]
