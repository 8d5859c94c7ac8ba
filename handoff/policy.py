"""When the bot hands a conversation to people: one decision per customer turn.

Triggers, in order of precedence when several fire (each can be switched off in `PolicyConfig.enabled`):

=================== ============ ======== =========================================================
trigger             target       priority fires when
=================== ============ ======== =========================================================
keyword             supervisor   high     a configured keyword/topic appears (legal, chargeback, ...)
asked_for_human     agent        normal   the customer asks for a person (see `handoff.phrases`)
negative_sentiment  agent        high     VADER compound (lowered by shouting/"!!!") <= threshold
vip                 agent        high     the customer is VIP or flagged
bot_repeating       agent        normal   the bot's reply would repeat one of its last two replies
low_confidence      agent        normal   top KB confidence < answer threshold N turns in a row
agent_escalate      supervisor   high     an agent pressed Escalate (`Policy.agent_escalation`)
=================== ============ ======== =========================================================

The winning trigger names the decision; the others that fired are listed in `Decision.also`.
Target is "supervisor" if any fired trigger targets a supervisor; priority is the highest
among them, raised to "urgent" when a keyword comes with anger or from a VIP.
`target="supervisor"` means escalate (state `escalated`); `"agent"` means the agents' queue
(state `waiting`).

In state `bot` (or `resolved`, a returning customer) every enabled trigger is evaluated. In
`waiting`/`assigned` people already own the conversation: only supervisor triggers (keyword)
are evaluated. In `escalated` nothing is left to decide.

    >>> policy = Policy(PolicyConfig())
    >>> policy.decide(Turn(text="agent!!", state="bot", hits=(), low_confidence_streak=0)).trigger
    'asked_for_human'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import Any, Literal

from handoff.errors import PolicyConfigError, UnknownTriggerError
from handoff.phrases import compile_keywords, find_human_request, find_keywords
from handoff.sentiment import mood
from kb_index.types import Hit

Target = Literal["agent", "supervisor"]
Priority = Literal["low", "normal", "high", "urgent"]

KEYWORD = "keyword"
ASKED_FOR_HUMAN = "asked_for_human"
NEGATIVE_SENTIMENT = "negative_sentiment"
VIP = "vip"
BOT_REPEATING = "bot_repeating"
LOW_CONFIDENCE = "low_confidence"
AGENT_ESCALATE = "agent_escalate"

# Precedence order of the per-turn triggers.
TURN_TRIGGERS: tuple[str, ...] = (
    KEYWORD,
    ASKED_FOR_HUMAN,
    NEGATIVE_SENTIMENT,
    VIP,
    BOT_REPEATING,
    LOW_CONFIDENCE,
)
ALL_TRIGGERS: frozenset[str] = frozenset((*TURN_TRIGGERS, AGENT_ESCALATE))
PRIORITIES: tuple[Priority, ...] = ("low", "normal", "high", "urgent")

ROUTES: dict[str, tuple[Target, Priority]] = {
    KEYWORD: ("supervisor", "high"),
    ASKED_FOR_HUMAN: ("agent", "normal"),
    NEGATIVE_SENTIMENT: ("agent", "high"),
    VIP: ("agent", "high"),
    BOT_REPEATING: ("agent", "normal"),
    LOW_CONFIDENCE: ("agent", "normal"),
    AGENT_ESCALATE: ("supervisor", "high"),
}

# The defaults, defined once: `bot.settings.Settings` takes its defaults from these.
DEFAULT_KEYWORDS: tuple[str, ...] = (
    "lawyer",
    "legal action",
    "chargeback",
    "sue",
    "court",
    "fraud",
    "cancel my account",
    "close my account",
    "data breach",
)

DEFAULT_LOW_CONFIDENCE_LIMIT = 1
DEFAULT_SENTIMENT_THRESHOLD = -0.6

_PEOPLE_STATES = ("waiting", "assigned")
_CLOSED_STATES = ("escalated",)


def parse_list(value: str | Iterable[str]) -> tuple[str, ...]:
    """'a, b,,c' -> ('a', 'b', 'c'); an iterable is cleaned the same way."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(item.strip() for item in items if item.strip())


def parse_triggers(value: str | Iterable[str]) -> frozenset[str]:
    """'all' (or empty) -> every trigger; 'all,-vip' -> every trigger but vip; 'keyword,vip' -> those."""
    names = parse_list(value)
    enabled = set(ALL_TRIGGERS) if not names or names[0] == "all" else set()
    for name in names:
        if name == "all":
            continue
        if name.startswith("-"):
            enabled.discard(name[1:])
            name = name[1:]
        else:
            enabled.add(name)
        if name not in ALL_TRIGGERS:
            raise UnknownTriggerError(name, ALL_TRIGGERS)
    return frozenset(enabled)


@dataclass(frozen=True)
class PolicyConfig:
    answer_threshold: float = 0.6
    low_confidence_limit: int = DEFAULT_LOW_CONFIDENCE_LIMIT
    sentiment_threshold: float = DEFAULT_SENTIMENT_THRESHOLD
    keywords: tuple[str, ...] = DEFAULT_KEYWORDS
    enabled: frozenset[str] = ALL_TRIGGERS

    def __post_init__(self) -> None:
        if not 0.0 <= self.answer_threshold <= 1.0:
            raise PolicyConfigError("answer_threshold", self.answer_threshold, "must be within 0..1")
        if self.low_confidence_limit < 1:
            raise PolicyConfigError("low_confidence_limit", self.low_confidence_limit, "must be at least 1")
        if not -1.0 <= self.sentiment_threshold <= 1.0:
            raise PolicyConfigError("sentiment_threshold", self.sentiment_threshold, "must be within -1..1")
        if isinstance(self.keywords, str):
            raise PolicyConfigError("keywords", self.keywords, "a tuple of phrases, not one string")
        for name in self.enabled:
            if name not in ALL_TRIGGERS:
                raise UnknownTriggerError(name, ALL_TRIGGERS)

    @classmethod
    def from_settings(cls, settings: Any) -> PolicyConfig:
        """Build from `bot.settings.Settings` (read by attribute; missing handoff fields keep defaults)."""
        kwargs: dict[str, Any] = {
            "low_confidence_limit": settings.low_confidence_limit,
            "keywords": parse_list(settings.escalation_keywords),
        }
        if getattr(settings, "answer_threshold", None) is not None:  # unset: the KB's, given per turn
            kwargs["answer_threshold"] = settings.answer_threshold
        if getattr(settings, "handoff_sentiment_threshold", None) is not None:
            kwargs["sentiment_threshold"] = settings.handoff_sentiment_threshold
        if getattr(settings, "handoff_triggers", None) is not None:
            kwargs["enabled"] = parse_triggers(settings.handoff_triggers)
        return cls(**kwargs)


@dataclass(frozen=True)
class Turn:
    """One customer turn as the pipeline sees it, before the bot replies.

    `low_confidence_streak` is the streak BEFORE this turn; `previous_bot_replies` the bot's
    last replies, oldest first; `candidate_reply` the text the bot is about to send, if the
    pipeline knows it (else the top hit's answer when it is confident enough to be sent).
    """

    text: str
    state: str
    hits: Sequence[Hit]
    low_confidence_streak: int
    previous_bot_replies: Sequence[str] = ()
    customer_vip: bool = False
    customer_flagged: bool = False
    candidate_reply: str | None = None
    answer_threshold: float | None = None  # the one in force for this turn (else the config's)


@dataclass(frozen=True)
class Decision:
    """Hand the conversation to people: who (`target`), how urgently, and why (`trigger`, `evidence`)."""

    trigger: str
    evidence: str
    target: Target
    priority: Priority
    also: tuple[str, ...] = field(default=())  # other triggers that fired this turn

    @property
    def state(self) -> str:
        return "escalated" if self.target == "supervisor" else "waiting"

    def to_dict(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "evidence": self.evidence,
            "target": self.target,
            "priority": self.priority,
            "also": list(self.also),
        }


_WORDS = re.compile(r"[^\w]+")


def _norm_reply(text: str) -> str:
    return _WORDS.sub(" ", text.lower()).strip()


def _similar(a: str, b: str) -> bool:
    a, b = _norm_reply(a), _norm_reply(b)
    if not a or not b:
        return False
    if a == b:
        return True
    short, long_ = sorted((a, b), key=len)
    if len(short) >= 40 and short in long_:
        return True  # the same article wrapped in a different greeting or sign-off
    return SequenceMatcher(None, a, b, autojunk=False).ratio() >= 0.9


def _clip(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


class Policy:
    """Decides, on every customer turn, whether the bot keeps the conversation. Pure and fast."""

    def __init__(self, config: PolicyConfig) -> None:
        self.config = config
        self._keywords = compile_keywords(config.keywords)

    # ---- each trigger on its own: the evidence when it fires, else None --------------------------

    def check_keyword(self, turn: Turn) -> str | None:
        found = find_keywords(turn.text, self._keywords)
        return "keyword " + ", ".join(repr(k) for k in found) if found else None

    def check_asked_for_human(self, turn: Turn) -> str | None:
        phrase = find_human_request(turn.text)
        return f"asked for a person: {_clip(phrase)!r}" if phrase else None

    def check_negative_sentiment(self, turn: Turn) -> str | None:
        m = mood(turn.text)
        if m.score <= self.config.sentiment_threshold:
            return f"negative sentiment: {m.describe()} <= {self.config.sentiment_threshold:.2f}"
        return None

    def check_vip(self, turn: Turn) -> str | None:
        flags = [name for name, on in (("VIP", turn.customer_vip), ("flagged", turn.customer_flagged)) if on]
        return " and ".join(flags) + " customer" if flags else None

    def _threshold(self, turn: Turn) -> float:
        return turn.answer_threshold if turn.answer_threshold is not None else self.config.answer_threshold

    def check_bot_repeating(self, turn: Turn) -> str | None:
        candidate = turn.candidate_reply
        top = turn.hits[0] if turn.hits else None
        if candidate is None and top is not None and top.confidence >= self._threshold(turn):
            candidate = top.answer
        if not candidate:
            return None
        recent = list(turn.previous_bot_replies)[-2:]
        for back, reply in enumerate(reversed(recent), start=1):
            if _similar(candidate, reply):
                which = "last reply" if back == 1 else "reply before last"
                source = f" (article {top.article_id} {top.title!r})" if top is not None else ""
                return f"would repeat its {which}{source}: {_clip(reply)!r}"
        return None

    def check_low_confidence(self, turn: Turn) -> str | None:
        top = turn.hits[0].confidence if turn.hits else 0.0
        if top >= self._threshold(turn):
            return None
        streak = turn.low_confidence_streak + 1
        if streak < self.config.low_confidence_limit:
            return None
        return (
            f"top confidence {top:.2f} < {self._threshold(turn):.2f} "
            f"for {streak} turns in a row (limit {self.config.low_confidence_limit})"
        )

    # ---- the decision --------------------------------------------------------------------------------

    def fired(self, turn: Turn) -> list[tuple[str, str]]:
        """Every enabled trigger that fires on this turn, in precedence order, with its evidence."""
        if turn.state in _CLOSED_STATES:
            return []
        names = TURN_TRIGGERS
        if turn.state in _PEOPLE_STATES:
            names = tuple(n for n in names if ROUTES[n][0] == "supervisor")
        out: list[tuple[str, str]] = []
        for name in names:
            if name not in self.config.enabled:
                continue
            evidence = getattr(self, f"check_{name}")(turn)
            if evidence is not None:
                out.append((name, evidence))
        return out

    def decide(self, turn: Turn) -> Decision | None:
        """None: the bot keeps the conversation. Otherwise who takes it, how urgently and why."""
        fired = self.fired(turn)
        if not fired:
            return None
        names = [name for name, _ in fired]
        target: Target = "supervisor" if any(ROUTES[n][0] == "supervisor" for n in names) else "agent"
        priority = max((ROUTES[n][1] for n in names), key=PRIORITIES.index)
        if KEYWORD in names and (NEGATIVE_SENTIMENT in names or turn.customer_vip):
            priority = "urgent"
        trigger, evidence = fired[0]
        if len(fired) > 1:
            evidence += "; also " + "; ".join(f"{n}: {e}" for n, e in fired[1:])
        return Decision(trigger, evidence, target, priority, tuple(names[1:]))

    def agent_escalation(self, *, by: str, reason: str | None) -> Decision:
        """An agent pressed Escalate: always a supervisor, high priority (even if the trigger is disabled:
        a person asked for it)."""
        evidence = f"escalated by {by}" + (f": {reason}" if reason else "")
        target, priority = ROUTES[AGENT_ESCALATE]
        return Decision(AGENT_ESCALATE, evidence, target, priority)
