"""Who may do what (handoff.permissions), enforced by the agent actions every desk calls: each action
and each command tried by someone who may not, against the real Slack desk rig. State unchanged,
an ephemeral notice (or the command's reply) says why."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.models import Conversation, Event, Message
from bot.models import ConversationState as S
from channels import slack_blocks as kit
from handoff.permissions import AGENT as AGENT_ROLE
from handoff.permissions import SUPERVISOR as SUPERVISOR_ROLE
from handoff.permissions import Actor, NotAllowed
from tests.bot.desk.slack_rig import AGENT, AGENT2, SUPER, Rig
from tests.bot.helpers import texts

OUTSIDE_CHANNEL = "C0RANDOM"
OUTSIDER = "U0OUTSIDER"


@pytest.fixture
async def rig(rig_factory: Any) -> Rig:  # noqa: F811
    made: Rig = await rig_factory()
    return made


async def _snapshot(rig: Rig, conv_id: int) -> tuple[Any, ...]:
    async with rig.sm() as s:
        conv = await s.get(Conversation, conv_id)
        assert conv is not None
        messages = (await s.execute(select(func.count()).select_from(Message).where(
            Message.conversation_id == conv_id))).scalar_one()
        events = (await s.execute(select(func.count()).select_from(Event).where(
            Event.conversation_id == conv_id))).scalar_one()
        return conv.state, conv.assignee_id, conv.assignee_role, messages, events


async def _supervisor_owns(rig: Rig) -> int:
    """A conversation a supervisor took (escalated, then Take)."""
    conv_id = await rig.customer("I will talk to my lawyer about this parcel")
    await rig.click(kit.A_TAKE, str(conv_id), user=SUPER)
    conv = await rig.conv(conv_id)
    assert (conv.state, conv.assignee_id) == (S.ASSIGNED, SUPER)
    return conv_id


async def _command(rig: Rig, text: str, *, user: str, channel: str) -> str:
    from tests.fakes.slack import command_request

    body, headers = command_request("test-signing-secret-123", user=user, text=text, channel=channel)
    resp = await rig.http.post("/slack/commands", content=body, headers=headers)
    assert resp.status_code == 200
    await rig.settle()
    return resp.text


async def test_an_agents_buttons_on_a_supervisors_conversation_are_refused(rig: Rig) -> None:
    conv_id = await _supervisor_owns(rig)
    before = await _snapshot(rig, conv_id)
    sent = texts(rig.web)
    for action in (kit.A_RESOLVE, kit.A_ESCALATE, kit.A_TAKE):
        await rig.click(action, str(conv_id), user=AGENT, conv_id=conv_id)
        assert await _snapshot(rig, conv_id) == before, action
    notices = rig.ephemerals(AGENT)
    assert len(notices) == 3
    assert all("Nothing was" in n for n in notices)
    assert f"<@{SUPER}> owns conversation #{conv_id}: only they or a supervisor can resolve it." in notices[0]
    # A suggestion's Send, a thread reply and an internal note: refused the same way.
    await rig.reply("let me answer instead", conv_id=conv_id, user=AGENT)
    assert "NOT sent" in rig.ephemerals(AGENT)[-1]
    await rig.click(kit.A_NOTE, str(conv_id), user=AGENT, conv_id=conv_id)
    note_view = [v for v in rig.fake.views if v["method"] == "views.open"][-1]["view"]
    await rig.submit(note_view, "an agent's note on someone else's conversation", user=AGENT)
    assert f"<@{SUPER}> owns conversation #{conv_id}" in rig.ephemerals(AGENT)[-1]
    assert await _snapshot(rig, conv_id) == before
    assert texts(rig.web) == sent
    # The supervisor may do all of it.
    await rig.click(kit.A_RESOLVE, str(conv_id), user=SUPER, conv_id=conv_id)
    assert (await rig.conv(conv_id)).state == S.RESOLVED


async def test_an_agent_cannot_act_on_another_agents_conversation(rig: Rig) -> None:
    conv_id = await rig.customer("my parcel is late")
    await rig.reply("I'm on it", conv_id=conv_id, user=AGENT)
    before = await _snapshot(rig, conv_id)
    for action in (kit.A_RESOLVE, kit.A_ESCALATE):
        await rig.click(action, str(conv_id), user=AGENT2, conv_id=conv_id)
    for text in (f"resolve {conv_id}", f"release {conv_id}", f"assign {conv_id} <@{AGENT2}|bo>"):
        assert "Nothing was changed." in await rig.command(text, user=AGENT2), text
    assert await _snapshot(rig, conv_id) == before
    assert len(rig.ephemerals(AGENT2)) == 2
    # Its owner may: resolve works for them.
    await rig.click(kit.A_RESOLVE, str(conv_id), user=AGENT, conv_id=conv_id)
    assert (await rig.conv(conv_id)).state == S.RESOLVED


async def test_commands_outside_the_desk_channels_are_refused(rig: Rig) -> None:
    conv_id = await rig.customer("my parcel is late")
    before = await _snapshot(rig, conv_id)
    for text in ("queue", "stats", "kb parcel", "report", f"resolve {conv_id}", f"assign {conv_id} <@{AGENT}|ann>",
                 f"customer {conv_id} vip", "available", f"release {conv_id}"):
        reply = await _command(rig, text, user=AGENT2, channel=OUTSIDE_CHANNEL)
        assert reply.startswith("/switchboard works in the agents' channels only"), (text, reply)
        assert "#" not in reply.split("only", 1)[1], text  # nothing about any conversation leaks
    assert await _snapshot(rig, conv_id) == before
    # In the agents' channel the same agent may; a supervisor may anywhere.
    assert "#" in await _command(rig, "queue", user=AGENT2, channel="C0AGENTS")
    assert "Resolved" in await _command(rig, f"resolve {conv_id}", user=SUPER, channel=OUTSIDE_CHANNEL)


async def test_configured_agents_only_everyone_else_is_an_outsider(rig_factory: Any) -> None:  # noqa: F811
    rig = await rig_factory(slack_agent_ids=f"{AGENT},{AGENT2}")
    conv_id = await rig.customer("my parcel is late")
    before = await _snapshot(rig, conv_id)
    [suggestion] = (await rig.suggestions(conv_id))[:1]
    for action, value in ((kit.A_RESOLVE, str(conv_id)), (kit.A_ESCALATE, str(conv_id)),
                          (kit.A_TAKE, str(conv_id)), (kit.A_SEND, str(suggestion.id)),
                          (kit.A_NOT_HELPFUL, str(suggestion.id))):
        await rig.click(action, value, user=OUTSIDER, conv_id=conv_id)
    await rig.reply("hello from a stranger", conv_id=conv_id, user=OUTSIDER)
    await rig.click(kit.A_EDIT, str(suggestion.id), user=OUTSIDER, conv_id=conv_id)  # Edit, then Send
    edit_view = [v for v in rig.fake.views if v["method"] == "views.open"][-1]["view"]
    await rig.submit(edit_view, "an edited answer from a stranger", user=OUTSIDER)
    await rig.click(kit.A_NOTE, str(conv_id), user=OUTSIDER, conv_id=conv_id)
    note_view = [v for v in rig.fake.views if v["method"] == "views.open"][-1]["view"]
    await rig.submit(note_view, "a stranger's note", user=OUTSIDER)
    notices = rig.ephemerals(OUTSIDER)
    assert len(notices) == 8 and all("not one of this desk's agents" in n for n in notices), notices
    for text in ("queue", "stats", f"resolve {conv_id}"):
        assert "not available to you" in await rig.command(text, user=OUTSIDER)  # even in the agents' channel
    assert await _snapshot(rig, conv_id) == before
    assert (await rig.suggestions(conv_id))[0].feedback is None
    # An outsider's App Home shows no queue.
    event = {"type": "app_home_opened", "user": OUTSIDER, "channel": "D0HOME", "tab": "home", "event_ts": "1.1"}
    assert (await rig.event(event, event_id="EvHomeOut")).status_code == 200
    [published] = [v for v in rig.fake.views if v["method"] == "views.publish"]
    assert f"#{conv_id}" not in json.dumps(published["view"])
    # Listed agents may use commands from anywhere.
    assert "#" in await _command(rig, "queue", user=AGENT, channel=OUTSIDE_CHANNEL)


async def test_the_pipeline_enforces_the_rule_for_every_desk(rig: Rig) -> None:
    """The console calls the same actions: the check sits in them, under the row lock."""
    conv_id = await _supervisor_owns(rig)
    before = await _snapshot(rig, conv_id)
    agent = Actor(AGENT, AGENT_ROLE)
    with pytest.raises(NotAllowed) as refused:
        await rig.agents.resolve(conv_id, by=AGENT, actor=agent)
    assert refused.value.conversation_id == conv_id and refused.value.action == "resolve"
    with pytest.raises(NotAllowed):
        await rig.agents.reply(conv_id, text="hi", author_id=AGENT, actor=agent)
    with pytest.raises(NotAllowed):
        await rig.agents.assign(conv_id, user_id=AGENT, actor=agent)
    from handoff.policy import Decision

    with pytest.raises(NotAllowed):
        await rig.agents.escalate(conv_id, decision=Decision("agent", "test", "supervisor", "high"), actor=agent)
    assert await _snapshot(rig, conv_id) == before
    assert await rig.agents.resolve(conv_id, by=SUPER, actor=Actor(SUPER, SUPERVISOR_ROLE))
