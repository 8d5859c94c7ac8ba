"""Errors raised by `handoff`.

* HandoffError
  + PolicyConfigError      -- a PolicyConfig value is out of range (carries `field`, `value`)
    - UnknownTriggerError  -- a trigger name nobody knows (carries `name`, `known`)
  + ConversationNotFound   -- build_context for an id that is not stored (carries `conversation_id`)
  + SLAConfigError         -- business hours or targets that cannot work (carries `field`, `value`)
  + PIIPolicyError         -- a PII_POLICY entry that is not kind=mask|keep, or keeps a card (carries `entry`)
"""

from __future__ import annotations

from typing import Any


class HandoffError(Exception):
    """Base of every error `handoff` raises."""


class PolicyConfigError(HandoffError, ValueError):
    def __init__(self, field: str, value: Any, reason: str) -> None:
        super().__init__(f"{field}={value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


class UnknownTriggerError(PolicyConfigError):
    def __init__(self, name: str, known: frozenset[str]) -> None:
        super().__init__("enabled", name, f"unknown trigger (known: {', '.join(sorted(known))})")
        self.name = name
        self.known = known


class ConversationNotFound(HandoffError, LookupError):
    def __init__(self, conversation_id: int) -> None:
        super().__init__(f"conversation {conversation_id} not found")
        self.conversation_id = conversation_id


class SLAConfigError(HandoffError, ValueError):
    def __init__(self, field: str, value: Any, reason: str) -> None:
        super().__init__(f"{field}={value!r}: {reason}")
        self.field = field
        self.value = value
        self.reason = reason


class PIIPolicyError(HandoffError, ValueError):
    def __init__(self, entry: str, reason: str) -> None:
        super().__init__(f"PII_POLICY entry {entry!r}: {reason}")
        self.entry = entry
        self.reason = reason
