"""A message's delivery status only moves forward, whatever order the platform's callbacks arrive in.

    queued/accepted/scheduled -> sending -> sent -> delivered | undelivered | failed | canceled -> read

The first final status wins (a late "delivered" after "failed" changes nothing, nor does a repeated
"failed", so agents are warned once); "read" follows any of them. Statuses we do not know are ignored.
"""

from __future__ import annotations

RANK = {"accepted": 0, "scheduled": 0, "queued": 0, "sending": 1, "sent": 2, "partially_delivered": 2,
        "delivered": 3, "undelivered": 3, "failed": 3, "canceled": 3, "read": 4}
PROBLEMS = frozenset({"undelivered", "failed"})


def advances(old: str | None, new: str) -> bool:
    """Should a callback saying `new` replace the stored `old`?"""
    if new not in RANK:
        return False
    if old is None or old not in RANK:
        return True
    return RANK[new] > RANK[old]
