"""Parsing `/switchboard` command text (pure; the desk runs the parsed command).

    /switchboard kb <question>            search the knowledge base
    /switchboard queue                    who is waiting (and escalated)
    /switchboard stats                    conversations per state, today's events
    /switchboard resolve [<id>]           resolve a conversation
    /switchboard assign [<id>] @user      hand a conversation to someone
    /switchboard help

Without an id, `resolve` and `assign` act on the caller's only assigned conversation. A conversation
someone else holds moves only when a supervisor, or its owner, runs `assign`.
Mentions arrive escaped (``<@U123|ann>``) when the command is created with "Escape channels,
users, and links" on, as the manifest does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERBS = ("kb", "queue", "stats", "resolve", "assign", "help")
MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
CONV_ID = re.compile(r"^#?(\d{1,9})$")  # ids are INTEGER columns: longer numbers are not ids

HELP = (
    "*/switchboard* commands:\n"
    "\u2022 `kb <question>`: search the knowledge base\n"
    "\u2022 `queue`: conversations waiting for a person\n"
    "\u2022 `stats`: conversations per state and today's numbers\n"
    "\u2022 `resolve [id]`: resolve a conversation (the bot answers again)\n"
    "\u2022 `assign [id] @user`: hand a conversation to someone (someone else's: supervisors only, or its owner)"
)


@dataclass(frozen=True, slots=True)
class Command:
    verb: str  # one of VERBS, or "unknown"
    query: str = ""
    conversation_id: int | None = None
    target_user: str | None = None
    error: str | None = None


def parse_command(text: str) -> Command:
    words = text.strip().split()
    if not words:
        return Command("help")
    verb, rest = words[0].lower(), words[1:]
    if verb not in VERBS:
        return Command("unknown", error=f"Unknown command `{words[0]}`.\n{HELP}")
    if verb == "kb":
        query = " ".join(rest).strip()
        return Command("kb", query=query, error=None if query else "Usage: `/switchboard kb <question>`")
    conv_id: int | None = None
    target: str | None = None
    for word in rest:
        if (m := CONV_ID.match(word)) is not None:
            conv_id = int(m.group(1))
        elif (m := MENTION.fullmatch(word)) is not None:
            target = m.group(1)
        elif word.startswith("@"):
            return Command(verb, error=f"I cannot tell who {word} is: pick the person from Slack's @-menu.")
        else:
            return Command(verb, error=f"I did not understand `{word}`.\n{HELP}")
    if verb == "assign" and target is None:
        return Command(verb, error="Usage: `/switchboard assign [id] @user`")
    return Command(verb, conversation_id=conv_id, target_user=target)
