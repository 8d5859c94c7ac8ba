"""Handoff: when the bot gives a conversation to people (`policy`), what goes with it (`context`),
the clock they work against (`sla`), and the personal data masked out of every message (`pii`).

It reaches humans only through what the pipeline gives it: it must not import `bot.engine`,
`bot.app` or any `channels` module (it may use `bot.models`, `bot.db`, `bot.messages`, `kb_index.types`).
"""

from handoff.context import (
    BotAttempt,
    ContextPackage,
    CustomerProfile,
    PreviousConversation,
    Suggestion,
    TranscriptLine,
    build_context,
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
    "build_context",
    "mask_address",
]
