"""Signed Slack input that PostgreSQL cannot store as sent (a NUL in an agent's reply or note) is made
storable, not lost to a database error on every retry (issue 13, class 5, the Slack side)."""

from __future__ import annotations

from typing import Any

import pytest

from channels import slack_blocks as kit
from tests.bot.desk.slack_rig import Rig
from tests.bot.helpers import texts


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


@pytest.mark.postgres
async def test_huge_ids_and_nul_in_commands_are_answered_not_500(rig_factory: Any, pg_url: str) -> None:  # noqa: F811
    """Ids are INTEGER columns: 2**40 in a button or a command is 'no such conversation', not a database error."""
    rig: Rig = await rig_factory(db_url=pg_url)
    conv_id = await rig.customer("my parcel is late")
    huge = str(2**40)
    resp = await rig.click(kit.A_RESOLVE, huge, conv_id=conv_id)
    assert resp.status_code == 200 and rig.ephemerals("U0AGENT")
    for text in (f"resolve {huge}", f"release {huge}", f"customer {huge}", f"assign {huge} <@U0AGENT2|bo>",
                 "customer 1 note a\x00b"):
        reply = await rig.command(text)
        assert reply and "error" not in reply.lower(), (text, reply)
    assert (await rig.conv(conv_id)).state != "resolved"


@pytest.mark.postgres
async def test_widget_routes_refuse_nul_and_huge_ids_on_postgresql(pg_db: Any,
                                                                   settings_factory: Any) -> None:
    import json

    import httpx
    from fastapi import FastAPI

    from bot.web_people_api import web_people_router
    from channels.webchat_session import SessionSigner

    settings = settings_factory()
    token = SessionSigner(settings.secret_key).issue()
    app = FastAPI()
    app.include_router(web_people_router(settings, pg_db))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
                                 base_url="http://t") as http:
        for route, body in (("/api/web/contact", {"token": token, "email": "a\u0000@b.co"}),
                            ("/api/web/contact", {"token": token, "phone": "+1415555\u00000123"}),
                            ("/api/web/feedback", {"token": token, "message_id": 2**70, "helpful": True})):
            resp = await http.post(route, content=json.dumps(body), headers={"content-type": "text/plain"})
            assert resp.status_code == 400, (route, body, resp.text)
