"""The people side of `/switchboard`: availability, release, customer profiles.

    /switchboard available [cap N]        take auto-assigned conversations (up to N open at once)
    /switchboard away                     stop taking them
    /switchboard release [id]             give a conversation back to the queue (yours; supervisors: any)
    /switchboard customer <id>            the profile of conversation <id>'s customer
    /switchboard customer <id> vip|notvip|tag <t>|untag <t>|name <..>|email <..>|phone <..>|note <..>
    /switchboard report [days]            the report of docs/reports.md for the last N days (7)

`people_command` answers these (and adds them to `help`) for `bot.desk.slack_home.SlackHome`;
anything else returns None and the home's own commands run.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from bot import audit
from bot import customers_admin as admin
from bot.agents import ReleaseResult
from bot.messages import utcnow
from bot.models import Conversation
from bot.presence import AVAILABLE, AWAY, set_presence
from bot.reports import build_report, report_lines
from channels.slack_commands import HELP
from handoff.sla import SLAPolicy

VERBS = ("available", "away", "release", "customer", "report", "help")
PEOPLE_HELP = (
    "\u2022 `available [cap N]` / `away`: take auto-assigned conversations, or stop\n"
    "\u2022 `release [id]`: give a conversation back to the queue\n"
    "\u2022 `customer <id>`: the customer's profile; add `vip`, `notvip`, `tag <t>`, `untag <t>`, "
    "`name <..>`, `email <..>`, `phone <..>` or `note <..>` to change it\n"
    "\u2022 `report [days]`: volume, automation, response times, FCR, AHT, CSAT, SLA (last 7 days)"
)
_ID = re.compile(r"^#?(\d{1,9})$")  # ids are INTEGER columns: longer numbers are not ids


async def people_command(host: Any, *, user: Any, text: str) -> str | None:
    words = text.strip().split()
    verb = words[0].lower() if words else "help"
    if verb not in VERBS:
        return None
    if verb == "help":
        return f"{HELP}\n{PEOPLE_HELP}"
    if verb == "report":
        return await _report(host, words[1:])
    if verb in ("available", "away"):
        return await _presence(host, user, verb, words[1:])
    if verb == "release":
        conv_id = _conv_id(words[1:]) or await host.only_assigned(user.id)
        if conv_id is None:
            return "Which conversation? Add its number, e.g. `/switchboard release 42`."
        try:
            result: ReleaseResult = await host.agents.unassign(conv_id, by=user.id, actor=await host.actor(user))
        except LookupError:
            return f"There is no conversation #{conv_id}."
        return result.message
    return await _customer(host, user, words[1:])


async def _report(host: Any, rest: list[str]) -> str:
    if len(rest) > 1 or (rest and not (rest[0].isdigit() and 1 <= int(rest[0]) <= 366)):
        return "Usage: `/switchboard report [days]` (1 to 366)"
    days = int(rest[0]) if rest else 7
    now = utcnow()
    async with host.sessionmaker() as session:
        report = await build_report(session, since=now - timedelta(days=days), until=now, now=now,
                                    policy=SLAPolicy.from_settings(host.settings))
    return "```\n" + "\n".join(report_lines(report)) + "\n```"


def _conv_id(words: list[str]) -> int | None:
    m = _ID.match(words[0]) if words else None
    return int(m.group(1)) if m else None


async def _presence(host: Any, user: Any, verb: str, rest: list[str]) -> str:
    cap: int | None = None
    if verb == "available" and rest:
        if len(rest) != 2 or rest[0].lower() != "cap" or not rest[1].isdigit():
            return "Usage: `/switchboard available [cap N]`"
        cap = int(rest[1])
    async with host.sessionmaker() as session, session.begin():
        row = await set_presence(session, agent_id=user.id, status=AVAILABLE if verb == "available" else AWAY,
                                 name=getattr(user, "name", None), cap=cap)
    if verb == "away":
        return "You are away: auto-assignment skips you. Conversations you hold stay yours."
    limit = f"up to {row.cap} open at once" if row.cap is not None else "up to the team's cap"
    return f"You are available: auto-assignment may give you conversations ({limit})."


async def _customer(host: Any, user: Any, rest: list[str]) -> str:
    conv_id = _conv_id(rest)
    if conv_id is None:
        return ("Usage: `/switchboard customer <conversation id> "
                "[vip|notvip|tag <t>|untag <t>|name|email|phone|note ...]`")
    action, value = (rest[1].lower(), " ".join(rest[2:])) if len(rest) > 1 else ("show", "")
    region = host.settings.sms_default_region
    async with host.sessionmaker() as session, session.begin():
        conv = await session.get(Conversation, conv_id)
        if conv is None:
            return f"There is no conversation #{conv_id}."
        cid = conv.customer_id
        try:
            if action == "vip" or action == "notvip":
                await admin.set_profile(session, customer_id=cid, vip=action == "vip")
            elif action in ("tag", "untag") and value:
                await admin.tag(session, customer_id=cid, add=[value] if action == "tag" else [],
                                remove=[value] if action == "untag" else [])
            elif action in ("name", "email", "phone", "note") and value:
                await admin.set_profile(
                    session, customer_id=cid, region=region, display_name=value if action == "name" else None,
                    email=value if action == "email" else None, phone=value if action == "phone" else None,
                    notes=value if action == "note" else None)
            elif action != "show":
                return f"I did not understand `{action}`.\n{PEOPLE_HELP}"
            if action != "show":
                await audit.record(session, actor=user.id, action="customer.update", target_kind="customer",
                                   target_id=cid, detail={"conversation_id": conv_id, "fields": [action]})
                await host.desk.profile_changed(session, conv)  # the thread's header shows VIP and tags
            summary = await admin.show_customer(session, customer_id=cid, limit=5)
        except admin.CustomerError as exc:
            return f"Not changed: {exc}."
    host.wake()
    c = summary.customer
    flags = " \u00b7 ".join(x for x in ("VIP" if c.vip else "", "flagged" if c.flagged else "") if x)
    lines = [f"*{c.display_name or 'Customer'}* (customer {c.id})" + (f" \u00b7 {flags}" if flags else ""),
             f"Email {c.email or '-'} \u00b7 phone {c.phone or '-'} \u00b7 tags {', '.join(c.tags or []) or '-'}",
             "Identities: " + (", ".join(f"{i.channel}" + (" (opted out)" if i.opted_out else "")
                                         for i in summary.identities) or "-"),
             "Recent: " + (", ".join(f"#{v.id} {v.channel} {v.state}" for v in summary.conversations) or "-")]
    if c.notes:
        lines.append(f"Notes: {c.notes}")
    return "\n".join(lines)
