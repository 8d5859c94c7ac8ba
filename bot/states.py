"""The conversation state machine.

    bot ──handoff──▶ waiting ──assign──▶ assigned ──resolve──▶ resolved ──reopen──▶ bot
     │                  │                   │                     ▲
     └──escalate──▶ escalated ◀──escalate───┘─────────────────────┘
"""

from __future__ import annotations

from bot.models import ConversationState as S


class InvalidTransition(Exception):
    def __init__(self, old: str, new: str) -> None:
        super().__init__(f"a conversation cannot go from {old!r} to {new!r}")
        self.old = old
        self.new = new


TRANSITIONS: dict[str, frozenset[str]] = {
    S.BOT: frozenset({S.WAITING, S.ESCALATED, S.ASSIGNED, S.RESOLVED}),
    S.WAITING: frozenset({S.ASSIGNED, S.ESCALATED, S.RESOLVED, S.BOT}),
    S.ASSIGNED: frozenset({S.ESCALATED, S.RESOLVED, S.WAITING}),
    S.ESCALATED: frozenset({S.ASSIGNED, S.RESOLVED}),
    S.RESOLVED: frozenset({S.BOT}),
}


def can_move(old: str, new: str) -> bool:
    return new in TRANSITIONS.get(old, frozenset())


def check_move(old: str, new: str) -> None:
    if not can_move(old, new):
        raise InvalidTransition(old, new)
