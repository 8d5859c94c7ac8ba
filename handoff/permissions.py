"""Who may do what to a conversation, and who may use the desk's commands. Pure: one rule for
every desk (Slack today, the web console next); the agent actions in `bot` enforce it inside the
transaction that holds the conversation's row lock, so a check can never race a state change.

    verdict = may(Actor("U1", AGENT), Action.RESOLVE, state="assigned", assignee_id="U2")
    verdict.allowed   # False
    verdict.reason    # "<@U2> owns this conversation: only they or a supervisor can resolve it."

| action                       | supervisor | agent: own or unowned | agent: someone else's / escalated | outsider |
| ---------------------------- | ---------- | --------------------- | --------------------------------- | -------- |
| reply, note                  | yes        | yes                   | no                                | no       |
| resolve, escalate, release   | yes        | yes (release: own)    | no                                | no       |
| assign (give it to someone)  | yes        | yes                   | no                                | no       |
| take (a supervisor claims)   | yes        | no                    | no                                | no       |
| feedback on a suggestion     | yes        | yes                   | yes                               | no       |

*Own* is ``assigned`` to the actor; *unowned* is ``bot``, ``waiting`` or ``resolved`` (nobody holds
it); ``escalated`` belongs to the supervisors until one takes it. ``system`` (the idle timer,
auto-assignment) may do everything. Commands (`may_command`) run only in a desk channel or for a
configured person (a supervisor or a listed agent); per-conversation commands then pass `may`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum

from handoff.errors import HandoffError

SUPERVISOR = "supervisor"
AGENT = "agent"
SYSTEM = "system"
OUTSIDER = "outsider"
ROLES = (SUPERVISOR, AGENT, SYSTEM, OUTSIDER)
UNOWNED_STATES = frozenset({"bot", "waiting", "resolved"})


class Action(StrEnum):
    REPLY = "reply"
    NOTE = "note"
    RESOLVE = "resolve"
    ESCALATE = "escalate"
    ASSIGN = "assign"
    RELEASE = "release"
    TAKE = "take"
    FEEDBACK = "feedback"


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    role: str = AGENT  # one of ROLES
    name: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; use one of {', '.join(ROLES)}")


SYSTEM_ACTOR = Actor("system", SYSTEM)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str | None = None  # said to the actor when refused (Slack mrkdwn-safe: ids only)


ALLOWED = Verdict(True)


class NotAllowed(HandoffError, PermissionError):
    """An actor tried an action the table above refuses; nothing was changed."""

    def __init__(self, *, actor: Actor, action: str, conversation_id: int | None, reason: str) -> None:
        super().__init__(reason)
        self.actor = actor
        self.action = action
        self.conversation_id = conversation_id
        self.reason = reason


_VERBS = {Action.REPLY: "answer the customer", Action.NOTE: "add notes", Action.RESOLVE: "resolve it",
          Action.ESCALATE: "escalate it", Action.ASSIGN: "assign it", Action.RELEASE: "release it",
          Action.TAKE: "take it", Action.FEEDBACK: "rate suggestions"}


def may(actor: Actor, action: Action | str, *, state: str, assignee_id: str | None,
        conversation_id: int | None = None) -> Verdict:
    """May `actor` do `action` to a conversation in `state` held by `assignee_id`? A refusal's reason
    is one sentence for the actor (the desk adds what did not happen)."""
    action = Action(action)
    this = f"conversation #{conversation_id}" if conversation_id is not None else "this conversation"
    This = this[0].upper() + this[1:]
    if actor.role in (SUPERVISOR, SYSTEM):
        return ALLOWED
    if actor.role == OUTSIDER:
        return Verdict(False, "You are not one of this desk's agents, so you cannot act on conversations.")
    if action == Action.FEEDBACK:
        return ALLOWED
    if action == Action.TAKE:
        return Verdict(False, "Only supervisors can take escalations.")
    if state == "escalated":
        return Verdict(False, f"{This} is escalated: only a supervisor can {_VERBS[action]}.")
    own = state == "assigned" and assignee_id == actor.id
    if action == Action.RELEASE and not own:
        return Verdict(False, f"{This} is with someone else: only they or a supervisor can release it.")
    if own or state in UNOWNED_STATES or (state == "assigned" and not assignee_id):
        return ALLOWED
    return Verdict(False, f"<@{assignee_id}> owns {this}: only they or a supervisor can {_VERBS[action]}.")


def check(actor: Actor, action: Action | str, *, state: str, assignee_id: str | None,
          conversation_id: int | None = None) -> None:
    """`may`, raising `NotAllowed` when refused (the agent actions call this under the row lock)."""
    verdict = may(actor, action, state=state, assignee_id=assignee_id, conversation_id=conversation_id)
    if not verdict.allowed:
        raise NotAllowed(actor=actor, action=str(action), conversation_id=conversation_id,
                         reason=verdict.reason or "Not allowed.")


def role_of(user_id: str, *, supervisors: Collection[str], agents: Collection[str]) -> str:
    """A desk user's role: listed supervisors; listed agents, or everyone when no agent is listed."""
    if user_id in supervisors:
        return SUPERVISOR
    if not agents or user_id in agents:
        return AGENT
    return OUTSIDER


def may_command(*, user_id: str, channel_id: str | None, role: str, desk_channels: Collection[str],
                agents: Collection[str]) -> Verdict:
    """Commands answer in a desk channel (agents', supervisors', routed), or anywhere for a supervisor
    or a listed agent; an outsider gets nothing, in any channel."""
    if role == OUTSIDER:
        return Verdict(False, "You are not one of this desk's agents: /switchboard is not available to you.")
    if role == SUPERVISOR or (role == AGENT and user_id in agents):
        return ALLOWED
    if channel_id and channel_id in desk_channels:
        return ALLOWED
    return Verdict(False, "/switchboard works in the agents' channels only (or for the configured agents and "
                          "supervisors). Nothing was done.")


__all__ = ["AGENT", "ALLOWED", "OUTSIDER", "ROLES", "SUPERVISOR", "SYSTEM", "SYSTEM_ACTOR", "Action", "Actor",
           "NotAllowed", "Verdict", "check", "may", "may_command", "role_of"]
