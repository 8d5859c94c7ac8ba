"""The context card's "Customer profile" button end to end (fake Slack Web API, real bolt app, desk,
pipeline and worker): the click opens a modal with the profile, a bad email is shown under its
field and changes nothing, a good submission sets VIP and tags (audited, told in the thread), and
the customer's next conversation then routes to the VIP route."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.audit import AuditEntry
from bot.models import Conversation, Customer
from bot.models import ConversationState as S
from channels import slack_customer as ck
from tests.bot.desk.slack_rig import AGENT, AGENTS, SECRET, VIPS, Rig
from tests.fakes.slack import interactive_request


def submission(view: dict[str, Any], *, vip: bool, tags: str, email: str = "", name: str = "") -> dict[str, Any]:
    """What Slack sends when the modal is submitted with these values typed in."""
    def text(field: str, value: str) -> dict[str, Any]:
        return {ck.block_id(field): {field: {"type": "plain_text_input", "value": value or None}}}

    option = {"text": {"type": "plain_text", "text": "VIP"}, "value": "vip"}
    values: dict[str, Any] = {ck.block_id("vip"): {"vip": {"type": "checkboxes",
                                                           "selected_options": [option] if vip else []}}}
    for field, value in (("tags", tags), ("email", email), ("display_name", name), ("phone", ""), ("notes", "")):
        values.update(text(field, value))
    return {"type": "view_submission", "team": {"id": "T0TEAM"}, "api_app_id": "A0APP",
            "user": {"id": AGENT, "username": "ann", "name": "ann", "team_id": "T0TEAM"},
            "trigger_id": "trigger-view", "view": {**view, "state": {"values": values}}}


async def submit(rig: Rig, payload: dict[str, Any]) -> Any:
    body, headers = interactive_request(SECRET, payload)
    resp = await rig.http.post("/slack/interactivity", content=body, headers=headers)
    await rig.settle()
    return resp


async def test_the_context_card_button_sets_vip_and_tags_and_vip_then_routes(rig_factory: Any) -> None:  # noqa: F811
    rig: Rig = await rig_factory(slack_routes=f"tag:vip={VIPS}", reopen_window_hours=0, csat_enabled=False)
    first = await rig.customer("my parcel is late", who="card")  # low confidence: handed to agents
    assert (await rig.conv(first)).state == S.WAITING
    thread = await rig.thread(first)
    [ctx] = [p for p in rig.fake.thread(AGENTS, thread.thread_ts or "") if (p.get("text") or "").startswith("Context")]
    [button] = [e for b in ctx["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert (button["action_id"], button["value"]) == (ck.A_CUSTOMER, str(first))

    await rig.click(ck.A_CUSTOMER, str(first), conv_id=first)
    [opened] = [v for v in rig.fake.views if v["method"] == "views.open"]
    view = opened["view"]
    assert view["callback_id"] == ck.V_CUSTOMER and "initial_options" not in view["blocks"][0]["element"]
    name_block = next(b for b in view["blocks"] if b.get("block_id") == ck.block_id("display_name"))
    assert name_block["element"]["initial_value"] == "Dana"

    # A bad email: the error shows under the field, nothing changes.
    bad = await submit(rig, submission(view, vip=True, tags="gold", email="not-an-email"))
    assert bad.status_code == 200 and bad.json()["response_action"] == "errors"
    assert "not an email address" in bad.json()["errors"][ck.block_id("email")]
    conv = await rig.conv(first)
    async with rig.sm() as s:
        customer = await s.get(Customer, conv.customer_id)
        assert customer is not None and (customer.vip, customer.tags) == (False, [])

    ok = await submit(rig, submission(view, vip=True, tags="gold, #Enterprise", email="dana@example.com",
                                          name="Dana"))
    assert ok.status_code == 200 and not ok.content
    async with rig.sm() as s:
        customer = await s.get(Customer, conv.customer_id)
        assert customer is not None
        assert (customer.vip, customer.tags, customer.email) == (True, ["gold", "enterprise"], "dana@example.com")
        [entry] = (await s.execute(select(AuditEntry).where(AuditEntry.action == "customer.update"))).scalars()
    assert (entry.actor, entry.target_kind, entry.target_id) == (AGENT, "customer", str(customer.id))
    assert entry.detail["fields"] == ["email", "tags", "vip"] and "dana@" not in str(entry.detail)  # no PII
    told = [p["text"] for p in rig.fake.thread(AGENTS, thread.thread_ts or "")]
    assert f"Customer profile updated by <@{AGENT}>: VIP on, email set, tags: gold, enterprise." in told
    header = [u for u in rig.fake.called("chat.update") if u["ts"] == thread.card_ts][-1]
    assert "enterprise, gold, vip" in str(header["blocks"])  # the thread's header shows them at once

    # Opening it again shows what was saved; the same values again change nothing (no second audit entry).
    await rig.click(ck.A_CUSTOMER, str(first), conv_id=first)
    again = [v for v in rig.fake.views if v["method"] == "views.open"][-1]["view"]
    assert again["blocks"][0]["element"]["initial_options"][0]["value"] == "vip"
    await submit(rig, submission(again, vip=True, tags="gold, enterprise", email="dana@example.com",
                                          name="Dana"))
    assert "Nothing changed." in rig.ephemerals(AGENT)

    # The VIP route now fires for this customer's next conversation, even for a question the bot knows.
    await rig.agents.resolve(first, by=AGENT)
    await rig.settle()
    second = await rig.customer("what are your opening hours?", who="card")
    assert second != first
    conv2 = await rig.conv(second)
    assert (conv2.state, conv2.handoff_reason) == (S.WAITING, "vip")
    assert (await rig.thread(second)).channel_id == VIPS


async def test_a_stale_or_forged_customer_button_changes_nothing(rig_factory: Any) -> None:  # noqa: F811
    rig: Rig = await rig_factory()
    await rig.click(ck.A_CUSTOMER, "99999")
    await rig.click(ck.A_CUSTOMER, "1; drop table")
    assert [v for v in rig.fake.views if v["method"] == "views.open"] == []
    assert len([e for e in rig.ephemerals(AGENT) if "out of date" in e]) == 2
    view = {"id": "V1", "type": "modal", "callback_id": ck.V_CUSTOMER, "private_metadata": '{"c": "nope"}'}
    resp = await submit(rig, submission(view, vip=True, tags="gold"))
    assert resp.status_code == 200
    async with rig.sm() as s:
        assert list((await s.execute(select(Customer).where(Customer.vip.is_(True)))).scalars()) == []
        assert list((await s.execute(select(Conversation))).scalars()) == []
