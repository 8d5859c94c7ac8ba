"""The Slack desk end to end (`bot.desk.slack`, `slack_actions`, `slack_home`, `slack_deliver`): real
Pipeline, Agents and Worker, real bolt app and slack_sdk client against the fake Slack Web API on
127.0.0.1, requests signed with the real v0 algorithm (the rig: tests/bot/desk/slack_rig.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import func, select

from bot.desk.slack import parse_routes
from bot.messages import Address, InboundMessage
from bot.models import Conversation, Customer, Event, Message, OutboxEntry, OutboxStatus
from bot.models import ConversationState as S
from channels import slack_blocks as kit
from tests.bot.desk.slack_rig import AGENT, AGENT2, AGENTS, SECRET, SUPER, SUPERS, Rig
from tests.bot.helpers import texts
from tests.fakes.slack import (
    FakeSlack,
    block_action,
    event_request,
    interactive_request,
)

# ---- the whole agent loop ----------------------------------------------------------------------------


async def test_whole_agent_loop_web_to_slack_and_back(rig: Rig) -> None:
    conv_id = await rig.customer("my parcel is late")
    conv = await rig.conv(conv_id)
    assert conv.state == S.WAITING
    # The thread: the card first (root, in the agents' channel), then the customer's message with a suggestion.
    thread = await rig.thread(conv_id)
    roots = rig.fake.roots(AGENTS)
    assert [r["ts"] for r in roots] == [thread.thread_ts] == [thread.card_ts]
    posts = await rig.thread_posts(conv_id)
    assert "my parcel is late" in str(posts[0]["blocks"])
    first_blocks = str(posts[0]["blocks"])
    assert "Shipping" in first_blocks and "45% confident" in first_blocks
    assert {kit.A_SEND, kit.A_EDIT, kit.A_NOT_HELPFUL, kit.A_ESCALATE, kit.A_RESOLVE} <= _action_ids(posts[0])
    # The bot told the customer it is handing off; agents see that notice after the customer's message.
    assert texts(rig.web) == [rig.settings.handoff_message]
    assert any(rig.settings.handoff_message in (p["text"] or "") for p in posts[1:])

    # Send the suggestion: the customer gets exactly that text, once; the agent is assigned.
    [sugg] = await rig.suggestions(conv_id)
    assert (await rig.click(kit.A_SEND, str(sugg.id), conv_id=conv_id, name="ann")).status_code == 200
    await rig.click(kit.A_SEND, str(sugg.id), conv_id=conv_id, name="ann")  # a double click
    assert texts(rig.web).count("Answer about shipping.") == 1
    assert texts(rig.web)[-1] == "Answer about shipping."
    conv = await rig.conv(conv_id)
    assert (conv.state, conv.assignee_id) == (S.ASSIGNED, AGENT)
    assert rig.learned == [{"article_id": "shipping", "question": "my parcel is late", "negative": False}]
    assert "Already sent." in rig.ephemerals(AGENT)

    # The agent replies in the thread: relayed to the customer as written.
    assert (await rig.reply("It left our warehouse today, tracking follows.", conv_id=conv_id)).status_code == 200
    assert texts(rig.web)[-1] == "It left our warehouse today, tracking follows."
    # The card shows the assignee (chat.update of the root).
    updates = [u for u in rig.fake.called("chat.update") if u["ts"] == thread.card_ts]
    assert updates and f"<@{AGENT}>" in str(updates[-1]["blocks"])

    # Resolve: the bot answers again.
    await rig.click(kit.A_RESOLVE, str(conv_id), conv_id=conv_id)
    assert (await rig.conv(conv_id)).state == S.RESOLVED
    before = len(rig.web.sent)
    await rig.customer("what are your opening hours?")
    assert texts(rig.web)[before:] == ["Answer about opening-hours."]
    assert (await rig.conv(conv_id)).state == S.BOT
    # Each owed message went out once: no duplicate anywhere.
    assert len(texts(rig.web)) == len(set(texts(rig.web)))
    assert len({p["ts"] for p in rig.fake.posts()}) == len(rig.fake.posts())


def _action_ids(message: dict[str, Any]) -> set[str]:
    return {el.get("action_id") for b in message.get("blocks") or [] if b.get("type") == "actions"
            for el in b.get("elements", [])}



async def _msg_count(rig: Rig) -> int:
    async with rig.sm() as s:
        return int((await s.execute(select(func.count()).select_from(Message))).scalar_one())


# ---- signatures and retries ----------------------------------------------------------------------------


async def test_forged_or_stale_signatures_get_401_and_store_nothing(rig: Rig) -> None:
    conv_id = await rig.customer("my parcel is late")
    thread = await rig.thread(conv_id)
    stored, posts, sent = await _msg_count(rig), len(rig.fake.posts()), len(rig.web.sent)
    event = {"type": "message", "channel": AGENTS, "user": AGENT, "text": "forged!", "ts": "1800000000.000001",
             "thread_ts": thread.thread_ts, "channel_type": "channel"}
    body, headers = event_request("not-the-secret", event, event_id="EvForged")
    assert (await rig.http.post("/slack/events", content=body, headers=headers)).status_code == 401
    stale = await rig.event(event, event_id="EvStale", timestamp=int(time.time()) - 600)
    assert stale.status_code == 401
    body, headers = event_request(SECRET, event, event_id="EvTampered")
    tampered = body.replace(b"forged!", b"FORGED!")
    assert (await rig.http.post("/slack/events", content=tampered, headers=headers)).status_code == 401
    body, headers = interactive_request("not-the-secret", block_action(
        user=AGENT, action_id=kit.A_RESOLVE, value=str(conv_id), channel=AGENTS, message_ts="1.0"))
    assert (await rig.http.post("/slack/interactivity", content=body, headers=headers)).status_code == 401
    await rig.settle()
    assert (await _msg_count(rig), len(rig.fake.posts()), len(rig.web.sent)) == (stored, posts, sent)
    assert (await rig.conv(conv_id)).state == S.WAITING


async def test_events_api_retry_of_a_processed_event_is_200_and_sends_nothing_twice(rig: Rig) -> None:
    conv_id = await rig.customer("my parcel is late")
    ts = "1800000000.000100"
    assert (await rig.reply("On its way!", conv_id=conv_id, ts=ts)).status_code == 200
    for retry in (1, 2):
        assert (await rig.reply("On its way!", conv_id=conv_id, ts=ts, retry=retry)).status_code == 200
    # Two retries racing each other (Slack retries after 3 s even if the first is still running).
    racing = await asyncio.gather(*(rig.reply("Racing", conv_id=conv_id, ts="1800000000.000200", retry=r)
                                    for r in (None, 1, 2)))
    assert [r.status_code for r in racing] == [200, 200, 200]
    await rig.settle()
    assert texts(rig.web).count("On its way!") == 1
    assert texts(rig.web).count("Racing") == 1
    async with rig.sm() as s:
        n = (await s.execute(select(func.count()).select_from(Message).where(
            Message.source_id == f"slack:{AGENTS}:{ts}"))).scalar_one()
    assert n == 1
    assert rig.ephemerals(AGENT) == []


# ---- Slack failures ------------------------------------------------------------------------------------


async def test_slack_5xx_429_and_timeouts_deliver_every_post_and_reply_exactly_once(rig_factory: Any) -> None:
    from tests.bot.helpers import transient

    rig = await rig_factory(web_failures=[transient(), transient(retry_after=0.2)])
    fake = rig.fake
    fake.fail_next("chat.postMessage", 503)
    fake.fail_next("chat.postMessage", 429, retry_after=1)
    fake.stall_next("chat.postMessage", 1.0)  # Slack stores it, the answer comes after our 0.5 s timeout
    fake.fail_next("chat.update", 500)
    conv_id = await rig.customer("my parcel is late")
    [sugg] = await rig.suggestions(conv_id)
    fake.stall_next("chat.postMessage", 1.0)
    fake.fail_next("chat.postMessage", 502)
    await rig.click(kit.A_SEND, str(sugg.id), conv_id=conv_id)
    fake.fail_next("chat.postMessage", 429, retry_after=1)
    await rig.reply("Tracking number follows.", conv_id=conv_id)

    outcomes = [c.outcome for c in fake.calls if c.method == "chat.postMessage"]
    assert {"error 503 None", "error 429 None", "error 502 None"} <= set(outcomes)
    # The 429's Retry-After was honoured through the outbox.
    calls = [c for c in fake.calls if c.method == "chat.postMessage"]
    i = next(k for k, c in enumerate(calls) if c.outcome.startswith("error 429"))
    assert calls[i + 1].at - calls[i].at >= 0.95
    # Exactly once, everywhere: one root card, every owed thread post once, every customer reply once.
    thread = await rig.thread(conv_id)
    assert [r["ts"] for r in fake.roots(AGENTS)] == [thread.thread_ts]
    async with rig.sm() as s:
        entries = list((await s.execute(select(OutboxEntry).where(
            OutboxEntry.channel.in_(("slack", "slack_notice"))))).scalars())
    assert all(e.status == OutboxStatus.DELIVERED for e in entries)
    owed_posts = [e for e in entries if e.kind in ("slack.post", "slack.context")]
    posted = [m for m in fake.thread(AGENTS, thread.thread_ts)]
    markers = [m["metadata"]["event_payload"]["outbox"] for m in posted]
    assert sorted(markers) == sorted(str(e.id) for e in owed_posts)
    assert texts(rig.web) == [rig.settings.handoff_message, "Ann from our team has joined the conversation.",
                              "Answer about shipping.", "Tracking number follows."]
    assert rig.web.calls == len(rig.web.sent) + 2  # the two scripted failures, then each reply once


# ---- escalation and Take ---------------------------------------------------------------------------------


async def test_escalate_posts_context_card_and_only_supervisors_may_take(rig: Rig) -> None:
    conv_id = await rig.customer("my parcel is late")
    await rig.click(kit.A_ESCALATE, str(conv_id), conv_id=conv_id)
    conv = await rig.conv(conv_id)
    assert conv.state == S.ESCALATED
    [card] = rig.fake.roots(SUPERS)
    blocks = str(card["blocks"])
    for expected in ("agent_escalate", "escalated by Ann", "my parcel is late", "Shipping 45%", "Dana"):
        assert expected in blocks
    assert kit.A_TAKE in _action_ids(card)
    thread = await rig.thread(conv_id)
    assert thread.esc_ts == card["ts"]

    # An agent may neither take it nor answer the customer while it is escalated.
    sent_before = texts(rig.web)
    await rig.click(kit.A_TAKE, str(conv_id), user=AGENT)
    assert "Only supervisors can take escalations. Nothing was assigned." in rig.ephemerals(AGENT)
    await rig.reply("let me help", conv_id=conv_id, user=AGENT)
    assert any("escalated" in t and "NOT sent" in t for t in rig.ephemerals(AGENT))
    conv = await rig.conv(conv_id)
    assert (conv.state, conv.assignee_id) == (S.ESCALATED, None)
    assert texts(rig.web) == sent_before

    # A supervisor takes it: assigned, the card says so, the customer is told once.
    await rig.click(kit.A_TAKE, str(conv_id), user=SUPER)
    await rig.click(kit.A_TAKE, str(conv_id), user=SUPER)
    conv = await rig.conv(conv_id)
    assert (conv.state, conv.assignee_id, conv.assignee_role) == (S.ASSIGNED, SUPER, "supervisor")
    assert texts(rig.web).count("Sue from our team has joined the conversation.") == 1
    assert "taken by" in str(rig.fake.roots(SUPERS)[0]["blocks"])
    # From then on the supervisor's replies in the escalation thread reach the customer.
    await rig.reply("I'm sorry, I've refunded the shipping.", conv_id=conv_id, user=SUPER, esc=True)
    assert texts(rig.web)[-1] == "I'm sorry, I've refunded the shipping."
    # And the customer's next message shows up in both threads.
    await rig.customer("thank you")
    assert "thank you" in str(rig.fake.thread(SUPERS, card["ts"]))
    assert "thank you" in str(await rig.thread_posts(conv_id))


async def test_supervisor_group_from_slack_usergroup(rig_factory: Any) -> None:
    fake = FakeSlack(users={AGENT: "Ann", "U0GRPSUP": "Gail"}, groups={"S0SUPS": ["U0GRPSUP"]})
    rig = await rig_factory(fake, slack_supervisor_ids="", slack_supervisor_group="S0SUPS")
    conv_id = await rig.customer("I will talk to my lawyer about this parcel")  # keyword -> escalated
    assert (await rig.conv(conv_id)).state == S.ESCALATED
    assert len(rig.fake.roots(SUPERS)) == 1
    await rig.click(kit.A_TAKE, str(conv_id), user=AGENT)
    assert (await rig.conv(conv_id)).assignee_id is None
    await rig.click(kit.A_TAKE, str(conv_id), user="U0GRPSUP")
    assert (await rig.conv(conv_id)).assignee_id == "U0GRPSUP"
    assert rig.fake.called("usergroups.users.list")


# ---- ownership ------------------------------------------------------------------------------------------


async def test_first_agent_to_act_owns_it_others_are_refused(rig: Rig) -> None:
    conv_id = await rig.customer("my parcel is late")
    await rig.reply("I'm on it", conv_id=conv_id, user=AGENT)
    await rig.reply("me too", conv_id=conv_id, user=AGENT2)
    [refusal] = rig.ephemerals(AGENT2)
    assert f"<@{AGENT}> owns conversation #{conv_id}" in refusal and "NOT sent" in refusal
    assert "me too" not in texts(rig.web)
    # A supervisor may step in without taking it over.
    await rig.reply("Supervisor here", conv_id=conv_id, user=SUPER)
    assert texts(rig.web)[-1] == "Supervisor here"
    assert (await rig.conv(conv_id)).assignee_id == AGENT


# ---- restarts and routing --------------------------------------------------------------------------------


async def test_thread_mapping_survives_a_restart_and_a_routing_change(rig_factory: Any, tmp_path: Any) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}"
    first = await rig_factory(db_url=url)
    conv_id = await first.customer("my parcel is late")
    root = (await first.thread(conv_id)).thread_ts
    # A new process with new routing rules: the open conversation keeps its thread.
    second = await rig_factory(first.fake, db_url=url, slack_routes="web=C0WEBDESK")
    assert second.desk is not first.desk
    await second.reply("Still here after the restart", conv_id=conv_id)
    assert texts(second.web) == ["Ann from our team has joined the conversation.", "Still here after the restart"]
    assert (await second.thread(conv_id)).channel_id == AGENTS
    await second.customer("another parcel question", who="sess-2")
    assert len(second.fake.roots("C0WEBDESK")) == 1
    assert [r["ts"] for r in second.fake.roots(AGENTS)] == [root]


async def test_routes_by_channel_and_tag(rig: Rig) -> None:

    rig.desk.routes = parse_routes("tag:vip=C0VIP, sms=C0SMS,bad-rule, web=")
    sms = Conversation(channel="sms", tags=[])
    assert rig.desk.route(conversation=sms, customer=Customer(vip=False)) == "C0SMS"
    assert rig.desk.route(conversation=sms, customer=Customer(vip=True)) == "C0VIP"
    web = Conversation(channel="web", tags=["VIP"])
    assert rig.desk.route(conversation=web, customer=None) == "C0VIP"
    assert rig.desk.route(conversation=Conversation(channel="web", tags=[]), customer=None) == AGENTS


# ---- what is ignored, edits, deletions, unknown users ----------------------------------------------------


async def test_bots_top_level_messages_edits_deletions_and_unknown_users(rig: Rig) -> None:
    conv_id = await rig.customer("my parcel is late")
    thread = await rig.thread(conv_id)
    base = {"type": "message", "channel": AGENTS, "thread_ts": thread.thread_ts, "channel_type": "channel"}
    await rig.event({**base, "subtype": "bot_message", "bot_id": "B0OTHER", "text": "beep", "ts": "1800.1"},
                    event_id="Ev1")
    await rig.event({**base, "user": "U0BOT", "bot_id": "B0BOT", "text": "our own", "ts": "1800.2"},
                    event_id="Ev2")
    await rig.event({"type": "message", "channel": AGENTS, "user": AGENT, "text": "top level", "ts": "1800.3",
                     "channel_type": "channel"}, event_id="Ev3")
    await rig.event({**base, "thread_ts": "1234.5678", "user": AGENT, "text": "other thread", "ts": "1800.4"},
                    event_id="Ev4")
    await rig.event({**base, "subtype": "channel_join", "user": AGENT, "text": "joined", "ts": "1800.5"},
                    event_id="Ev5")
    assert texts(rig.web) == [rig.settings.handoff_message]
    assert (await rig.conv(conv_id)).state == S.WAITING

    # A user Slack cannot tell us about is still an agent: the reply is relayed without a name.
    await rig.reply("Hello from a guest", conv_id=conv_id, user="U0GHOST", ts="1800.6")
    assert texts(rig.web)[-2:] == ["An agent from our team has joined the conversation.", "Hello from a guest"]
    async with rig.sm() as s:
        m = (await s.execute(select(Message).where(Message.text == "Hello from a guest"))).scalar_one()
    assert (m.author_id, m.author_name, m.author_kind) == ("U0GHOST", None, "agent")

    # Editing or deleting it in Slack cannot unsend it: the author is told, nothing is re-sent.
    sent = len(rig.web.sent)
    edited = {"user": "U0GHOST", "text": "Hello, edited", "ts": "1800.6", "thread_ts": thread.thread_ts}
    await rig.event({"type": "message", "subtype": "message_changed", "channel": AGENTS, "hidden": True,
                     "message": edited, "previous_message": {**edited, "text": "Hello from a guest"},
                     "ts": "1800.7"}, event_id="Ev7")
    await rig.event({"type": "message", "subtype": "message_deleted", "channel": AGENTS, "hidden": True,
                     "deleted_ts": "1800.6", "previous_message": edited, "ts": "1800.8"}, event_id="Ev8")
    notices = rig.ephemerals("U0GHOST")
    assert any(n.startswith("Edits are not re-sent") for n in notices)
    assert any(n.startswith("Deleted in Slack only") for n in notices)
    assert len(rig.web.sent) == sent
    # Our own card updates (message_changed of a bot message) are not edits.
    await rig.event({"type": "message", "subtype": "message_changed", "channel": AGENTS, "hidden": True,
                     "message": {"bot_id": "B0BOT", "ts": thread.thread_ts, "text": "card"}, "ts": "1800.9"},
                    event_id="Ev9")
    assert len(rig.ephemerals("U0GHOST")) == 2


# ---- suggestions: not helpful, edit & send; notes ----------------------------------------------------------


async def test_not_helpful_edit_and_send_and_internal_notes(rig: Rig) -> None:
    conv_id = await rig.customer("my parcel is late and I want a refund")
    suggs = await rig.suggestions(conv_id)
    assert [s.article_id for s in suggs] == ["refunds", "shipping"]
    await rig.click(kit.A_NOT_HELPFUL, str(suggs[1].id), conv_id=conv_id)
    await rig.click(kit.A_NOT_HELPFUL, str(suggs[1].id), conv_id=conv_id)
    assert rig.learned == [{"article_id": "shipping", "question": "my parcel is late and I want a refund",
                            "negative": True}]
    assert rig.ephemerals(AGENT)[-1] == "Already marked as not helpful."
    from kb_index.models import KBPhrasing

    async with rig.sm() as s:  # stored too, so every index rebuild re-applies it
        rows = list((await s.execute(select(KBPhrasing))).scalars())
    assert [(r.article_id, r.negative, r.agent_id) for r in rows] == [("shipping", True, AGENT)]
    assert (await rig.conv(conv_id)).assignee_id is None  # feedback is not taking the conversation

    # Edit & send: a modal prefilled with the suggestion; what the agent submits is what the customer gets.
    await rig.click(kit.A_EDIT, str(suggs[0].id), conv_id=conv_id)
    [opened] = [v for v in rig.fake.views if v["method"] == "views.open"]
    element = opened["view"]["blocks"][0]["element"]
    assert element["initial_value"] == "Answer about refunds."
    edited = "Answer about refunds. I've started yours: 3-5 days."
    assert (await rig.submit(opened["view"], edited)).status_code == 200
    assert (await rig.submit(opened["view"], edited)).status_code == 200  # a double submit
    assert texts(rig.web).count(edited) == 1
    assert rig.learned[-1] == {"article_id": "refunds", "question": "my parcel is late and I want a refund",
                               "negative": False}
    # An empty submission keeps the modal open with an error.
    empty = await rig.submit(opened["view"], "   ")
    assert empty.json()["response_action"] == "errors"

    # Notes are explicit (button + modal), stored internal, shown in the thread, never sent.
    await rig.click(kit.A_NOTE, str(conv_id), conv_id=conv_id)
    note_view = [v for v in rig.fake.views if v["method"] == "views.open"][-1]["view"]
    assert note_view["callback_id"] == kit.V_NOTE
    sent = len(rig.web.sent)
    await rig.submit(note_view, "Customer was rude last time, be patient")
    assert len(rig.web.sent) == sent
    async with rig.sm() as s:
        note = (await s.execute(select(Message).where(Message.internal.is_(True)))).scalar_one()
    assert note.text == "Customer was rude last time, be patient" and note.author_id == AGENT
    assert "Internal note" in str((await rig.thread_posts(conv_id))[-1]["blocks"])
    # A thread reply that merely starts with "note:" is NOT a note: no prefix conventions.
    await rig.reply("note: this goes to the customer", conv_id=conv_id)
    assert texts(rig.web)[-1] == "note: this goes to the customer"


# ---- undelivered replies and opt-outs ----------------------------------------------------------------------


async def test_agents_see_undelivered_replies_and_opted_out_customers(rig_factory: Any) -> None:
    from tests.bot.helpers import permanent

    rig = await rig_factory(web_failures=[])
    conv_id = await rig.customer("my parcel is late")
    rig.web.failures.append(permanent())
    await rig.reply("This one bounces", conv_id=conv_id)
    posts = await rig.thread_posts(conv_id)
    assert "Not delivered to the customer (failed, error 21211)" in posts[-1]["text"] + str(posts[-1]["blocks"])

    await rig.pipeline.mark_opted_out(address=Address("web", "sess-1"))
    await rig.reply("Are you there?", conv_id=conv_id)
    assert "Are you there?" not in texts(rig.web)
    assert "opted out" in str((await rig.thread_posts(conv_id))[-1]["blocks"])


# ---- slash command and App Home -----------------------------------------------------------------------------


async def test_slash_command_and_app_home(rig: Rig) -> None:
    conv_id = await rig.customer("my parcel is late")
    assert f"#{conv_id} Dana" in await rig.command("queue")
    assert "Refunds" in await rig.command("kb how do refunds work")
    assert "waiting 1" in await rig.command("stats")
    assert "Unknown command" in await rig.command("dance")
    assert "Which conversation?" in await rig.command("resolve")
    reply = await rig.command(f"assign {conv_id} <@{AGENT2}|bo>")
    assert reply == f"#{conv_id} is now assigned to <@{AGENT2}>."
    conv = await rig.conv(conv_id)
    assert (conv.state, conv.assignee_id) == (S.ASSIGNED, AGENT2)
    assert "only they or a supervisor" in await rig.command(f"assign {conv_id} <@{AGENT}>")

    event = {"type": "app_home_opened", "user": AGENT2, "channel": "D0HOME", "tab": "home",
             "event_ts": "1800.1"}
    assert (await rig.event(event, event_id="EvHome")).status_code == 200
    [published] = [v for v in rig.fake.views if v["method"] == "views.publish"]
    assert published["user_id"] == AGENT2
    assert f"#{conv_id}" in str(published["view"]["blocks"])

    assert await rig.command("resolve", user=AGENT2) == f"Resolved #{conv_id}."
    assert (await rig.conv(conv_id)).state == S.RESOLVED
    assert "Nobody is waiting." == await rig.command("queue")


async def test_agents_see_sms_compliance_keywords_in_the_thread(rig: Rig) -> None:
    conv_id = await rig.customer("my parcel is late")
    await rig.pipeline.receive(InboundMessage(sender=Address("web", "sess-1"), platform_id="stop-1", text="STOP",
                                              meta={"compliance": "stop"}))
    await rig.settle()
    posts = await rig.thread_posts(conv_id)
    assert "opted out" in posts[-1]["text"] and "START" in posts[-1]["text"]
    assert "STOP" in str(posts[-2]["blocks"]) + posts[-2]["text"]


# ---- SLA pages and forced reassignment ------------------------------------------------------------------


async def test_sla_breach_pages_supervisors_once_with_mentions_and_a_thread_link(rig_factory: Any) -> None:
    from datetime import timedelta

    from bot.sla_watch import check_sla
    from handoff.sla import SLAPolicy

    fake = FakeSlack(users={AGENT: "Ann", SUPER: "Sue"}, groups={"S0SUPS": [SUPER]})
    rig = await rig_factory(fake, slack_supervisor_group="S0SUPS")
    conv_id = await rig.customer("my parcel is late")
    conv = await rig.conv(conv_id)
    assert conv.state == S.WAITING and conv.handed_off_at is not None
    policy = SLAPolicy.from_spec(hours="24/7", targets="normal=4h/24h")
    now = conv.handed_off_at + timedelta(hours=5, minutes=30)
    for _ in range(2):  # the second sweep pages nothing
        await check_sla(sessionmaker=rig.sm, desk=rig.desk, policy=policy, now=now)
        await rig.settle()
    [page] = rig.fake.roots(SUPERS)
    thread = await rig.thread(conv_id)
    assert thread.thread_ts
    link = f"https://slack.com/archives/{AGENTS}/p{thread.thread_ts.replace('.', '')}"
    body = page["text"] + str(page["blocks"])
    for expected in ("<!subteam^S0SUPS>", f"<@{SUPER}>", f"#{conv_id}", "first response", "1 h 30 min",
                     "normal", link, "Dana"):
        assert expected in body, expected
    assert page["text"].startswith(f"<!subteam^S0SUPS> <@{SUPER}> SLA breached")
    # The agents' thread says so, and the card shows the SLA line.
    posts = await rig.thread_posts(conv_id)
    assert [p["text"] for p in posts].count("SLA breached: first response is 1 h 30 min overdue. "
                                             "Supervisors were paged.") == 1
    card_updates = [u for u in rig.fake.called("chat.update") if u["ts"] == thread.card_ts]
    assert card_updates and "First response" in str(card_updates[-1]["blocks"])
    async with rig.sm() as s:
        events = list((await s.execute(select(Event).where(Event.kind == "sla_breached"))).scalars())
    assert [(e.conversation_id, e.data["clock"]) for e in events] == [(conv_id, "first_response")]


async def test_sla_page_falls_back_to_the_thread_and_warns_first(rig_factory: Any) -> None:
    from datetime import timedelta

    from bot.sla_watch import check_sla
    from handoff.sla import SLAPolicy

    rig = await rig_factory(slack_supervisors_channel=None)
    conv_id = await rig.customer("my parcel is late")
    await rig.reply("Looking into it", conv_id=conv_id)  # first response met; resolution still running
    conv = await rig.conv(conv_id)
    assert conv.handed_off_at is not None
    policy = SLAPolicy.from_spec(hours="24/7", targets="normal=4h/10h")
    await check_sla(sessionmaker=rig.sm, desk=rig.desk, policy=policy, now=conv.handed_off_at + timedelta(hours=9))
    await rig.settle()
    posts = await rig.thread_posts(conv_id)
    assert "SLA: resolution due in 1 h" in posts[-1]["text"]
    assert f"<@{AGENT}>" in str(posts[-1]["blocks"])  # the assignee is warned
    await check_sla(sessionmaker=rig.sm, desk=rig.desk, policy=policy, now=conv.handed_off_at + timedelta(hours=11))
    await rig.settle()
    posts = await rig.thread_posts(conv_id)
    assert posts[-1]["text"].startswith(f"<@{SUPER}> SLA breached: conversation #{conv_id}")
    assert "resolution" in posts[-1]["text"] and "1 h" in posts[-1]["text"]
    assert rig.fake.roots(SUPERS) == []
    assert sum("SLA breached" in p["text"] for p in posts) == 1


async def test_supervisor_or_owner_can_reassign_an_owned_conversation_agents_cannot(rig: Rig) -> None:

    conv_id = await rig.customer("my parcel is late")
    await rig.reply("I'm on it", conv_id=conv_id, user=AGENT)
    assert (await rig.conv(conv_id)).assignee_id == AGENT
    # Another agent cannot move it (not even to themselves).
    refused = await rig.command(f"assign {conv_id} <@{AGENT2}|bo>", user=AGENT2)
    assert "only they or a supervisor" in refused and f"<@{AGENT}>" in refused
    assert (await rig.conv(conv_id)).assignee_id == AGENT
    # A supervisor can: forced, logged, and the customer is not told a second time.
    moved = await rig.command(f"assign {conv_id} <@{AGENT2}|bo>", user=SUPER)
    assert moved == f"#{conv_id} moved from <@{AGENT}> to <@{AGENT2}>."
    conv = await rig.conv(conv_id)
    assert (conv.state, conv.assignee_id, conv.assignee_role) == (S.ASSIGNED, AGENT2, "agent")
    # The owner may hand it over themselves.
    assert await rig.command(f"assign {conv_id} <@{AGENT}>", user=AGENT2) == (
        f"#{conv_id} moved from <@{AGENT2}> to <@{AGENT}>.")
    assert (await rig.conv(conv_id)).assignee_id == AGENT
    async with rig.sm() as s:
        events = [e.data for e in (await s.execute(select(Event).where(
            Event.kind == "assigned").order_by(Event.id))).scalars()]
    assert [(d["to"], d.get("forced", False), d.get("from")) for d in events] == [
        (AGENT, False, None), (AGENT2, True, AGENT), (AGENT, True, AGENT2)]
    assert sum("joined the conversation" in t for t in texts(rig.web)) == 1
    # The new owner's replies reach the customer; the thread shows the reassignment.
    await rig.reply("Ann again, all sorted", conv_id=conv_id, user=AGENT)
    assert texts(rig.web)[-1] == "Ann again, all sorted"
    assert f"Assigned to <@{AGENT2}>." in [p["text"] for p in await rig.thread_posts(conv_id)]


async def test_pipeline_assign_force_moves_an_escalated_conversation(rig: Rig) -> None:
    conv_id = await rig.customer("I will talk to my lawyer about this parcel")
    assert (await rig.conv(conv_id)).state == S.ESCALATED
    refused = await rig.agents.assign(conv_id, user_id=AGENT, role="agent")
    assert (refused.assigned, refused.state) == (False, S.ESCALATED)
    forced = await rig.agents.assign(conv_id, user_id=AGENT, user_name="Ann", role="agent", force=True)
    assert (forced.assigned, forced.assignee_id, forced.state) == (True, AGENT, S.ASSIGNED)
    await rig.settle()
    assert texts(rig.web).count("Ann from our team has joined the conversation.") == 1
