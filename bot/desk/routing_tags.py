"""The tags a conversation is routed by (`SLACK_ROUTES` rules `tag:<name>=<channel>`).

A conversation's own tags, its customer's profile tags, and `vip` / `flagged` when the customer
is VIP or flagged, all lower-case::

    route_tags(conv, customer)  # {"vip", "enterprise"}
"""

from __future__ import annotations

from typing import Any


def route_tags(conversation: Any, customer: Any | None) -> set[str]:
    tags = {str(t).strip().lower() for t in (getattr(conversation, "tags", None) or [])}
    if customer is not None:
        tags |= {str(t).strip().lower() for t in (getattr(customer, "tags", None) or [])}
        if getattr(customer, "vip", False):
            tags.add("vip")
        if getattr(customer, "flagged", False):
            tags.add("flagged")
    return tags
