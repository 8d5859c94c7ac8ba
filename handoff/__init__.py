"""Handoff: when the bot gives a conversation to people (`policy`), what goes with it (`context`),
the clock they work against (`sla`), and the personal data masked out of every message (`pii`).

Pure: it imports neither `bot` nor `channels` (import contract in pyproject.toml); rows come in
as plain objects and the database reads live in `bot.store`.
"""

from handoff.context import (
    BotAttempt,
    ContextPackage,
    CustomerProfile,
    PreviousConversation,
    Suggestion,
    TranscriptLine,
    assemble_context,
    mask_address,
)
from handoff.errors import (
    ConversationNotFound,
    HandoffError,
    PolicyConfigError,
    SLAConfigError,
    UnknownTriggerError,
)
from handoff.pii import KINDS as PII_KINDS
from handoff.pii import Span, detect, parse_policy, redact, scrub
from handoff.policy import ALL_TRIGGERS, DEFAULT_KEYWORDS, Decision, Policy, PolicyConfig, Turn

__all__ = [
    "ALL_TRIGGERS",
    "PII_KINDS",
    "Span",
    "detect",
    "parse_policy",
    "redact",
    "scrub",
    "DEFAULT_KEYWORDS",
    "BotAttempt",
    "ContextPackage",
    "ConversationNotFound",
    "CustomerProfile",
    "Decision",
    "HandoffError",
    "Policy",
    "PolicyConfig",
    "PolicyConfigError",
    "PreviousConversation",
    "SLAConfigError",
    "Suggestion",
    "TranscriptLine",
    "Turn",
    "UnknownTriggerError",
    "assemble_context",
    "mask_address",
]
