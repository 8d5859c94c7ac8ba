"""Signed Slack input that PostgreSQL cannot store as sent (a NUL in an agent's reply or note) is made
storable, not lost to a database error on every retry (issue 13, class 5, the Slack side)."""

from __future__ import annotations

from typing import Any

import pytest

from channels import slack_blocks as kit
from tests.bot.helpers import texts
from tests.bot.test_slack_desk import Rig, rig_factory  # noqa: F401


@pytest.mark.postgres
async def test_a_nul_in_an_agents_reply_or_note_is_stored_on_postgresql(rig_factory: Any,  # noqa: F811
                                                                        pg_url: str) -> None:
    rig: Rig = await rig_factory(db_url=pg_url)
    conv_id = await rig.customer("my parcel is late")
    resp = await rig.reply("on\x00 it", conv_id=conv_id)
    assert resp.status_code == 200
    assert texts(rig.web)[-1] == "on it"
    await rig.click(kit.A_NOTE, str(conv_id), conv_id=conv_id)
    note_view = [v for v in rig.fake.views if v["method"] == "views.open"][-1]["view"]
    await rig.submit(note_view, "a note\x00 with a NUL")
    posts = " ".join(str(p.get("text")) for p in await rig.thread_posts(conv_id))
    assert "Internal note: a note with a NUL" in posts


@pytest.mark.postgres
async def test_ids_too_long_for_their_columns_are_a_clear_400(rig_factory: Any, pg_url: str) -> None:  # noqa: F811
    from tests.fakes.slack import command_request

    rig: Rig = await rig_factory(db_url=pg_url)
    conv_id = await rig.customer("my parcel is late")
    resp = await rig.reply("hello", conv_id=conv_id, user="U" + "9" * 100)
    assert resp.status_code == 400 and "Slack id" in resp.text
    body, headers = command_request("test-signing-secret-123", user="U" + "9" * 100, text="queue")
    resp = await rig.http.post("/slack/commands", content=body, headers=headers)
    assert resp.status_code == 400 and "user_id" in resp.text
    assert (await rig.conv(conv_id)).assignee_id is None
