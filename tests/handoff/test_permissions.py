"""The authorisation table of handoff.permissions, cell by cell."""

from __future__ import annotations

import pytest

from handoff.permissions import (
    AGENT,
    OUTSIDER,
    SUPERVISOR,
    SYSTEM_ACTOR,
    Action,
    Actor,
    NotAllowed,
    check,
    may,
    may_command,
    role_of,
)

ME, OTHER = "U1", "U2"
CONV_ACTIONS = (Action.REPLY, Action.NOTE, Action.RESOLVE, Action.ESCALATE, Action.ASSIGN)
# (state, assignee) -> may an agent act on it?
CASES = [("bot", None, True), ("waiting", None, True), ("resolved", None, True), ("assigned", ME, True),
         ("assigned", OTHER, False), ("escalated", None, False), ("assigned", None, True)]


@pytest.mark.parametrize("action", CONV_ACTIONS)
@pytest.mark.parametrize(("state", "assignee", "agent_may"), CASES)
def test_agents_own_and_unowned_supervisors_all_outsiders_nothing(action: Action, state: str,
                                                                 assignee: str | None, agent_may: bool) -> None:
    assert may(Actor(ME, AGENT), action, state=state, assignee_id=assignee).allowed is agent_may
    assert may(Actor(ME, SUPERVISOR), action, state=state, assignee_id=assignee).allowed
    assert may(SYSTEM_ACTOR, action, state=state, assignee_id=assignee).allowed
    refused = may(Actor(ME, OUTSIDER), action, state=state, assignee_id=assignee)
    assert not refused.allowed and "not one of this desk's agents" in (refused.reason or "")


def test_take_release_and_feedback() -> None:
    assert not may(Actor(ME, AGENT), Action.TAKE, state="escalated", assignee_id=None).allowed
    assert may(Actor(ME, SUPERVISOR), Action.TAKE, state="escalated", assignee_id=None).allowed
    assert may(Actor(ME, AGENT), Action.RELEASE, state="assigned", assignee_id=ME).allowed
    assert not may(Actor(ME, AGENT), Action.RELEASE, state="assigned", assignee_id=OTHER).allowed
    assert may(Actor(ME, AGENT), Action.FEEDBACK, state="escalated", assignee_id=OTHER).allowed
    assert not may(Actor(ME, OUTSIDER), Action.FEEDBACK, state="bot", assignee_id=None).allowed


def test_refusals_name_the_owner_and_raise_with_data() -> None:
    verdict = may(Actor(ME, AGENT), "resolve", state="assigned", assignee_id=OTHER, conversation_id=7)
    assert verdict.reason == f"<@{OTHER}> owns conversation #7: only they or a supervisor can resolve it."
    with pytest.raises(NotAllowed) as exc:
        check(Actor(ME, AGENT), Action.REPLY, state="escalated", assignee_id=None, conversation_id=7)
    assert (exc.value.action, exc.value.conversation_id, exc.value.actor.id) == ("reply", 7, ME)
    with pytest.raises(ValueError, match="unknown role"):
        Actor(ME, "admin")


def test_roles_and_the_command_gate() -> None:
    assert role_of(ME, supervisors={ME}, agents=set()) == SUPERVISOR
    assert role_of(ME, supervisors=set(), agents=set()) == AGENT  # no list: the channels are the gate
    assert role_of(ME, supervisors=set(), agents={OTHER}) == OUTSIDER
    desk = {"C0AGENTS"}
    assert may_command(user_id=ME, channel_id="C0AGENTS", role=AGENT, desk_channels=desk, agents=set()).allowed
    assert not may_command(user_id=ME, channel_id="C0X", role=AGENT, desk_channels=desk, agents=set()).allowed
    assert not may_command(user_id=ME, channel_id=None, role=AGENT, desk_channels=desk, agents=set()).allowed
    assert may_command(user_id=ME, channel_id="C0X", role=AGENT, desk_channels=desk, agents={ME}).allowed
    assert may_command(user_id=ME, channel_id="C0X", role=SUPERVISOR, desk_channels=desk, agents=set()).allowed
    assert not may_command(user_id=ME, channel_id="C0AGENTS", role=OUTSIDER, desk_channels=desk,
                           agents={OTHER}).allowed
