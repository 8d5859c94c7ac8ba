"""Block Kit builders: pure functions from plain values to Slack blocks and views.

Every interactive element carries only ids in its `value` (Slack caps it at 2,000 chars);
texts are looked up again when the click arrives. Action ids are the `A_*` constants below,
matched by the listeners in `channels.slack`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from channels.slack_format import escape as escape  # kit.escape: the one escaping for every block
from channels.slack_format import link as link

A_SEND = "sb_send"  # value: suggestion ref
A_EDIT = "sb_edit"  # value: suggestion ref
A_NOT_HELPFUL = "sb_not_helpful"  # value: suggestion ref
A_ESCALATE = "sb_escalate"  # value: conversation id
A_RESOLVE = "sb_resolve"  # value: conversation id
A_NOTE = "sb_note"  # value: conversation id
A_TAKE = "sb_take"  # value: conversation id
V_EDIT = "sb_edit_view"  # modal callback ids
V_NOTE = "sb_note_view"
INPUT_BLOCK = "sb_text"
INPUT_ACTION = "sb_text_input"

STATE_ICONS = {"bot": ":robot_face:", "waiting": ":hourglass_flowing_sand:", "assigned": ":bust_in_silhouette:",
               "escalated": ":rotating_light:", "resolved": ":white_check_mark:"}
AUTHOR_ICONS = {"customer": ":speech_balloon:", "bot": ":robot_face:", "agent": ":bust_in_silhouette:",
                "supervisor": ":crown:", "system": ":information_source:"}

Blocks = list[dict[str, Any]]




def clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def quote(text: str, limit: int = 2800) -> str:
    return "\n".join("> " + line for line in escape(clip(text, limit)).splitlines() or [""])


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 3000)}}


def context_block(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, 3000)}]}


def button(text: str, action_id: str, value: str, *, style: str | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {"type": "button", "text": {"type": "plain_text", "text": clip(text, 75)},
                         "action_id": action_id, "value": value}
    if style:
        b["style"] = style
    return b


def conversation_actions(conversation_id: int) -> dict[str, Any]:
    cid = str(conversation_id)
    return {"type": "actions", "block_id": f"conv:{cid}", "elements": [
        button("Note", A_NOTE, cid),
        button("Escalate", A_ESCALATE, cid, style="danger"),
        button("Resolve", A_RESOLVE, cid, style="primary"),
    ]}


@dataclass(frozen=True, slots=True)
class CardInfo:
    conversation_id: int
    customer: str
    channel: str
    state: str
    priority: str
    assignee: str | None = None
    tags: Sequence[str] = ()
    opted_out: bool = False
    reason: str | None = None
    sla: str | None = None  # e.g. ":alarm_clock: First response due ..." (already formatted mrkdwn)


def card(info: CardInfo) -> tuple[str, Blocks]:
    """The conversation card: the thread's root message, kept up to date with chat.update."""
    icon = STATE_ICONS.get(info.state, "")
    text = f"Conversation #{info.conversation_id} with {escape(info.customer)} ({info.channel}): {info.state}"
    fields = [
        f"*Customer*\n{escape(info.customer)}",
        f"*Channel*\n{info.channel}" + (" :no_entry: opted out" if info.opted_out else ""),
        f"*State*\n{icon} {info.state}",
        f"*Priority*\n{info.priority}",
        f"*Assignee*\n{'<@' + info.assignee + '>' if info.assignee else '_nobody yet_'}",
    ]
    if info.tags:
        fields.append("*Tags*\n" + ", ".join(escape(t) for t in info.tags))
    blocks: Blocks = [
        section(f"{icon} *Conversation #{info.conversation_id}* with *{escape(info.customer)}*"),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": clip(f, 2000)} for f in fields]},
    ]
    if info.reason:
        blocks.append(context_block(f"Why people: {escape(info.reason)}"))
    if info.sla:
        blocks.append(context_block(info.sla))
    if info.state != "resolved":
        blocks.append(conversation_actions(info.conversation_id))
    blocks.append(context_block("Reply in this thread to answer the customer. Use *Note* for internal notes."))
    return text, blocks


@dataclass(frozen=True, slots=True)
class SuggestionView:
    ref: str
    article_id: str
    title: str
    preview: str
    confidence: float
    url: str | None = None


@dataclass(frozen=True, slots=True)
class CustomerPost:
    conversation_id: int
    author: str
    text: str
    suggestions: Sequence[SuggestionView] = ()
    answered_by_bot: bool = False
    decision: dict[str, Any] | None = None
    attachments: Sequence[dict[str, Any]] = field(default_factory=tuple)
    read_with: str | None = None  # the earlier customer turn the KB read this message with


def customer_post(post: CustomerPost) -> tuple[str, Blocks]:
    """A customer message in the thread, with the top suggestions and one-click actions."""
    text = f"{escape(post.author)}: {escape(clip(post.text, 200))}"  # the fallback is mrkdwn too
    blocks: Blocks = [section(f"{AUTHOR_ICONS['customer']} *{escape(post.author)}*\n{quote(post.text)}")]
    for a in post.attachments:
        blocks.append(context_block(f":paperclip: {link(a.get('url'), 'attachment')} "
                                    f"({escape(str(a.get('content_type')))})"))
    if post.decision:
        d = post.decision
        blocks.append(context_block(f":rotating_light: handed to people: *{escape(str(d.get('trigger')))}* "
                               f"({escape(str(d.get('priority')))}): {escape(str(d.get('evidence', '')))}"))
    if post.answered_by_bot:
        blocks.append(context_block(":robot_face: the bot answered this one (its reply follows)"))
    if post.read_with and post.suggestions:
        blocks.append(context_block(f":link: read with their earlier message: {escape(clip(post.read_with, 200))}"))
    for i, s in enumerate(post.suggestions, start=1):
        source = link(s.url, s.title) if s.url else f"*{escape(s.title)}*"
        blocks.append(section(f"*Suggestion {i}* \u00b7 {source} \u00b7 `{s.article_id}` \u00b7 "
                               f"{round(s.confidence * 100)}% confident\n{quote(s.preview, 600)}"))
        blocks.append({"type": "actions", "block_id": f"sugg:{s.ref}", "elements": [
            button("Send", A_SEND, s.ref, style="primary"),
            button("Edit & send", A_EDIT, s.ref),
            button("Not helpful", A_NOT_HELPFUL, s.ref),
        ]})
    if not post.suggestions:
        blocks.append(context_block("No suggestion from the knowledge base: reply in this thread."))
    blocks.append(conversation_actions(post.conversation_id))
    return text, blocks


def notice(kind: str, text: str, *, who: str | None = None) -> tuple[str, Blocks]:
    """A one-line thread post: what the bot said, what an agent sent, a state change, a problem."""
    icon = AUTHOR_ICONS.get(kind, ":warning:" if kind == "problem" else ":small_blue_diamond:")
    head = f"{icon} *{escape(who)}*" if who else icon
    plain = escape(f"{who + ': ' if who else ''}{clip(text, 200)}")
    return plain, [section(f"{head}\n{quote(text)}" if kind in AUTHOR_ICONS else f"{head} {escape(text)}")]


def escalation_card(context: dict[str, Any], *, taken_by: str | None = None) -> tuple[str, Blocks]:
    """The supervisors' card, built from `handoff.context.ContextPackage.to_dict()`."""
    cid = context.get("conversation_id")
    cust = context.get("customer") or {}
    who = cust.get("display_name") or cust.get("address") or "customer"
    text = escape(f"Escalation: conversation #{cid} ({context.get('priority')}) with {who}")
    waiting = int(float(context.get("waiting_seconds") or 0))
    blocks: Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(f"Escalation #{cid} \u00b7 "
                                                                      f"{context.get('priority')}", 150)}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": clip(t, 2000)} for t in (
            f"*Customer*\n{escape(str(who))}" + (" :star: VIP" if cust.get("vip") else "")
            + (" :triangular_flag_on_post: flagged" if cust.get("flagged") else ""),
            f"*Channel*\n{context.get('channel')} \u00b7 {escape(str(cust.get('address') or ''))}",
            f"*Trigger*\n{escape(str(context.get('trigger')))}",
            f"*Waiting*\n{waiting // 60} min {waiting % 60} s",
            f"*Previous conversations*\n{cust.get('previous_conversations', 0)}",
            f"*State*\n{context.get('state')}",
        )]},
        section(f"*Why:* {escape(str(context.get('evidence') or ''))}"),
    ]
    summary = context.get("summary") or []
    if summary:
        blocks.append(section("*Summary*\n" + "\n".join(f"\u2022 {escape(str(s))}" for s in summary)))
    attempts = context.get("bot_attempts") or []
    if attempts:
        lines = []
        for a in attempts[-3:]:
            tops = ", ".join(f"{escape(str(s.get('title')))} {round(float(s.get('confidence', 0)) * 100)}%"
                             for s in (a.get("suggestions") or [])[:3]) or "no suggestion"
            lines.append(f"\u2022 _{escape(clip(str(a.get('query', '')), 120))}_ \u2192 {tops}"
                         + (" (answered)" if a.get("answered") else ""))
        blocks.append(section("*What the bot tried*\n" + "\n".join(lines)))
    transcript = [t for t in context.get("transcript") or [] if not t.get("internal")]
    if transcript:
        lines = [f"*{escape(str(t.get('author_name') or t.get('author_kind')))}:* "
                 f"{escape(clip(str(t.get('text', '')), 300))}" for t in transcript[-8:]]
        blocks.append(section("*Transcript* (latest)\n" + "\n".join(lines)))
    if taken_by:
        blocks.append(context_block(f":white_check_mark: taken by <@{taken_by}>: their replies in this thread "
                               "reach the customer"))
    else:
        blocks.append({"type": "actions", "block_id": f"esc:{cid}", "elements": [
            button("Take", A_TAKE, str(cid), style="primary")]})
    return text, blocks


def slack_date(epoch: float, fallback: str) -> str:
    """A time each reader sees in their own time zone (Slack's date formatting)."""
    return f"<!date^{int(epoch)}^{{date_short_pretty}} {{time}}|{escape(fallback)}>"


CLOCK_LABELS = {"first_response": "first response", "resolution": "resolution"}


@dataclass(frozen=True, slots=True)
class SlaPage:
    conversation_id: int
    customer: str
    channel: str
    priority: str
    state: str
    clock: str  # "first_response" | "resolution"
    overdue: str  # "1 h 5 min"
    due: str  # slack_date(...)
    mentions: Sequence[str] = ()  # "<@U1>", "<!subteam^S1>"
    link: str | None = None
    assignee: str | None = None


def sla_page(page: SlaPage) -> tuple[str, Blocks]:
    """The supervisors' page for a breached SLA clock (mentions first, so they notify)."""
    label = CLOCK_LABELS.get(page.clock, page.clock)
    who = " ".join(page.mentions)
    text = (f"{who + ' ' if who else ''}SLA breached: conversation #{page.conversation_id} ({page.priority}) "
            f"{label} overdue by {page.overdue}")
    where = link(page.link, f"#{page.conversation_id}") if page.link else f"#{page.conversation_id}"
    owner = f"<@{page.assignee}>" if page.assignee else "_nobody_"
    blocks: Blocks = [
        section(f":rotating_light: {who + ' ' if who else ''}*SLA breached* on {where}: *{label}* is "
                f"*{page.overdue}* overdue (was due {page.due})"),
        context_block(f"{escape(page.customer)} \u00b7 {page.channel} \u00b7 priority *{page.priority}* \u00b7 "
                      f"{STATE_ICONS.get(page.state, '')} {page.state} \u00b7 assignee {owner}"
                      + (f" \u00b7 {link(page.link, 'open the thread')}" if page.link else "")),
    ]
    return text, blocks


def _metadata(**values: Any) -> str:
    return json.dumps(values, separators=(",", ":"))


def parse_metadata(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _text_modal(callback_id: str, title: str, submit: str, label: str, initial: str,
                metadata: str, hint: str) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": INPUT_ACTION, "multiline": True,
                               "max_length": 3000}
    if initial:
        element["initial_value"] = clip(initial, 3000)
    return {
        "type": "modal", "callback_id": callback_id, "private_metadata": metadata,
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "input", "block_id": INPUT_BLOCK, "label": {"type": "plain_text", "text": label},
             "element": element},
            context_block(hint),
        ],
    }


def edit_modal(*, conversation_id: int, suggestion_ref: str, text: str, channel: str | None,
               thread_ts: str | None) -> dict[str, Any]:
    meta = _metadata(c=conversation_id, s=suggestion_ref, ch=channel, th=thread_ts)
    return _text_modal(V_EDIT, "Edit & send", "Send", "Reply to the customer", text, meta,
                       "This goes to the customer on their channel when you press Send.")


def note_modal(*, conversation_id: int, channel: str | None, thread_ts: str | None) -> dict[str, Any]:
    meta = _metadata(c=conversation_id, ch=channel, th=thread_ts)
    return _text_modal(V_NOTE, "Internal note", "Save note", "Note for the team", "", meta,
                       ":lock: Internal: never sent to the customer.")


@dataclass(frozen=True, slots=True)
class HomeRow:
    conversation_id: int
    customer: str
    channel: str
    state: str
    priority: str
    waiting: str = ""
    link: str | None = None


def home_view(*, user: str, mine: Sequence[HomeRow], queue: Sequence[HomeRow]) -> dict[str, Any]:
    def rows(items: Sequence[HomeRow], empty: str) -> Blocks:
        if not items:
            return [context_block(empty)]
        out: Blocks = []
        for r in items[:40]:
            name = link(r.link, f"#{r.conversation_id}") if r.link else f"#{r.conversation_id}"
            waiting = f" \u00b7 {r.waiting}" if r.waiting else ""
            out.append(section(f"{STATE_ICONS.get(r.state, '')} *{name}* {escape(r.customer)} \u00b7 {r.channel}"
                                f" \u00b7 {r.state} \u00b7 {r.priority}{waiting}"))
        return out

    return {"type": "home", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Switchboard"}},
        section(f"*Your open conversations* (<@{user}>)"), *rows(mine, "Nothing assigned to you."),
        {"type": "divider"},
        section("*Waiting queue*"), *rows(queue, "Nobody is waiting."),
        context_block("`/switchboard queue` \u00b7 `/switchboard kb <question>` \u00b7 `/switchboard stats`"),
    ]}
