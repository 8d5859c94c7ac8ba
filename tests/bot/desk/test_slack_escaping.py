"""Customer and KB text never becomes live Slack markup, end to end (issue 13, class 4): a hostile
customer (text and name) and a hostile KB article (title, snippet, URL) go through the real desk, worker
and slack_sdk client; every field the fake Slack receives is checked."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.messages import Address, InboundMessage
from channels import slack_blocks as kit
from kb_index.types import Hit
from tests.bot.desk.slack_rig import Rig

LIVE = ("<!channel>", "<!here>", "<@U0BOSS>", "<https://evil", "<!subteam", "|click>", "<javascript:")
HOSTILE = "<!channel> <!here> <@U0BOSS> <https://evil.example|click> <!subteam^S1|@admins> <javascript:alert(1)>"


class HostileKB:
    async def search(self, query: str, *, history: Sequence[str] = (), last_article: str | None = None,
                     k: int = 3) -> list[Hit]:
        return [Hit(article_id="shipping", title="<!channel> Shipping <@U0BOSS>", snippet="<!here> preview",
                    answer="<https://evil.example|click> here", score=0.45, confidence=0.45,
                    url="https://kb.example/a|<!channel>")]


async def test_hostile_text_is_inert_in_every_field_slack_receives(rig_factory: Any) -> None:  # noqa: F811
    rig: Rig = await rig_factory()
    rig.pipeline.kb = HostileKB()
    receipt = await rig.pipeline.receive(InboundMessage(
        sender=Address("web", "sess-x"), platform_id="m1", text=f"help {HOSTILE}", display_name=HOSTILE))
    await rig.settle()
    conv_id = receipt.conversation_id
    await rig.reply("agent answer", conv_id=conv_id)  # a takeover: card update, notices
    await rig.click(kit.A_NOTE, str(conv_id), conv_id=conv_id)  # an internal note typed in a modal (raw text)
    note_view = [v for v in rig.fake.views if v["method"] == "views.open"][-1]["view"]
    await rig.submit(note_view, f"note: {HOSTILE}")
    await rig.settle()
    posted = [c for c in rig.fake.calls if c.method in ("chat.postMessage", "chat.update", "chat.postEphemeral")]
    assert len(posted) >= 3
    for call in posted:
        wire = " ".join(str(call.params.get(k)) for k in ("text", "blocks", "attachments"))
        for live in LIVE:
            assert live not in wire, (call.method, live, wire[:300])
    everything = " ".join(json.dumps(c.params) for c in posted)
    assert "&lt;!channel&gt;" in everything and "Internal note: note: &lt;!channel&gt;" in everything
