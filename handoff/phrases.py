"""Recognising "I want a person" in the many ways customers write it, and keyword matching.

Deterministic regular expressions, no model: a handful of request frames ("talk to ...",
"transfer me to ...", "I want a ...", a bare "agent!!", "is this a bot?", "stop the bot")
around a fuzzy vocabulary of people (human, person, agent, representative, manager, ...),
typos included. A match is dropped when its own clause negates it before the match
("I don't need a human", "no need to talk to a person", "without an agent"), except in
rhetorical questions ("why can't I talk to a human?", "why won't you let me speak to someone").

    >>> find_human_request("can i pls speak to a real person")
    'speak to a real person'
    >>> find_human_request("I don't need a human, thanks") is None
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# --- vocabulary -------------------------------------------------------------------------------------

# People a customer may ask for. Typos are spelled out rather than fuzzy-matched so the set stays
# auditable. "human" is not followed by words that make it something else (human resources, ...).
_PEOPLE = (
    r"(?:hu+m[ae]n(?!\s+(?:resources?|rights?|error|nature|body|being\s+error))s?|huamn|humna|hooman|humen"
    r"|pers[oa]n|persn|perosn|prson|people|ppl"
    r"|agents?|agnets?|agant|(?:live|support|service|customer)\s+agent"
    r"|re?pr[ae]?s[ae]?n[a-z]*|reps?"
    r"|op+[ae]rat[eo]rs?|man[ae]g[ae]rs?|manger|sup[ae]rvis[eo]rs?|supervisr|boss"
    r"|staff(?:\s+member)?|employee|team\s+member|your\s+team"
    r"|customer\s+(?:service|care|support)|support\s+(?:team|staff|person)|live\s+(?:chat|support|person)"
    r"|real\s+one)"
)
# Indefinite people: only inside an explicit "talk to" / "connect me with" frame.
_SOMEONE = r"(?:some\s?one|some1|somebody|any\s?one|anybody|sum1)"

# Words allowed between a request verb and the person ("a real live human", "to one of your agents").
_FILLER = (
    r"(?:(?:a|an|the|some|real|really|actual|actually|live|living|alive|human|your|ur|one|of|me|to|speak|"
    r"talk|chat|with|please|pls|plz|just|right|now|breathing|flesh|and|blood|proper|competent|"
    r"different|another|other|senior|qualified|person|someone|somebody|goddamn|damn|freaking|fucking|"
    r"speak|tlak|speek|get|back|through|over)\W+){0,5}?"
)
_TALK = r"(?:talk|tlak|takl|tak|tallk|speak|speek|spek|chat|converse|communicate|deal)"

_FRAMES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        # "talk to a human", "can I speak with someone", "let me chat to a real person"
        ("talk_to", rf"\b{_TALK}\s+(?:to|with|w/?)\W+{_FILLER}(?:{_PEOPLE}|{_SOMEONE})\b"),
        # "transfer me to an agent", "put me through to a manager", "connect me with someone"
        (
            "transfer",
            rf"\b(?:transfer|connect|put|pass|forward|redirect|route|escalate|send|hand)\w*\s+"
            rf"(?:me|this|my\s+\w+|it|us)?\s*(?:on\s+)?(?:to|through\s+to|over\s+to|with)\W+{_FILLER}"
            rf"(?:{_PEOPLE}|{_SOMEONE})\b",
        ),
        # "I want a human", "get me a manager", "I need an actual person", "give me a rep"
        (
            "want",
            rf"\b(?:want|wanna|need|needs|get|give|bring|request|requesting|demand|prefer|see|find|call)\s+"
            rf"{_FILLER}{_PEOPLE}\b",
        ),
        # "I need help from a human", "assistance from a real person"
        (
            "help_from",
            rf"\b(?:help|assistance|support|answers?|response)\s+(?:from|by)\W+{_FILLER}{_PEOPLE}\b",
        ),
        # "is there a human I can talk to", "is anyone real there", "are there any agents available"
        (
            "is_there",
            rf"\b(?:is|are)\s+there\s+(?:a|an|any)?\s*(?:real\s+|actual\s+|live\s+)?"
            rf"(?:{_PEOPLE}|{_SOMEONE}\s+(?:real|human|alive))\b",
        ),
        # "is this a bot?", "am I talking to a robot", "are you human", "are you real", "is this automated"
        (
            "bot_question",
            r"\b(?:is\s+(?:this|it|that)|am\s+i|are\s+(?:you|u)|r\s+u|you\s+are)\s+(?:talking\s+(?:to|with)\s+|"
            r"chatting\s+(?:to|with)\s+|speaking\s+(?:to|with)\s+)?(?:a|an|the)?\s*(?:real\s+|actual\s+)?"
            r"(?:bot|chat\s?bot|robot|machine|computer|ai|a\.i\.|automated|automatic|real|human|person|"
            r"live\s+person|living\s+person)\b",
        ),
        # "stop the bot", "enough of this bot", "no more bots", "I hate this bot", "I don't want a bot"
        (
            "anti_bot",
            r"\b(?:stop|quit|enough|no\s+more|hate|sick\s+of|tired\s+of|done\s+with|don'?t\s+want|do\s+not\s+want|"
            r"dont\s+want)\s+(?:with\s+|of\s+|talking\s+to\s+|to\s+talk\s+to\s+)?(?:the|this|a|these|your|you)?\s*"
            r"(?:stupid\s+|dumb\s+|useless\s+|automated\s+|damn\s+)?(?:bots?|chat\s?bots?|robots?|machines?|"
            r"automated\s+(?:replies|answers|system)|ai)\b",
        ),
        # "call me back", "can someone call me", "I want a callback"
        ("callback", r"\b(?:call\s+me(?:\s+back)?|ring\s+me|phone\s+me|call\s?back)\b"),
        # "escalate this", "I want to escalate"
        ("escalate", r"\bescalate\b(?:\s+(?:this|it|my|me|the))?"),
    )
)

# The whole message is just a person word (and politeness): "agent!", "human please", "REPRESENTATIVE",
# "real human pls", "agent agent agent", "operator?!", "a person now".
_BARE = re.compile(
    rf"^\W*(?:(?:hi|hello|hey|ok|okay|please|pls|plz|just|i\s+said|give\s+me|get\s+me|a|an|the|real|"
    rf"actual|live|speak\s+to|talk\s+to|human|only)\W+)*"
    rf"(?:{_PEOPLE})(?:\W+(?:{_PEOPLE}|please|pls|plz|now|asap|already|right\s+now|thanks?|thx|only|"
    rf"needed|required|here))*\W*$",
    re.IGNORECASE,
)

# Negation inside the clause, before the match. "can't/cannot" are deliberately absent:
# "I can't reach a human" and "why can't I talk to a person" are requests.
_NEGATION = re.compile(
    r"\b(?:don'?t|dont|do\s+not|doesn'?t|does\s+not|didn'?t|did\s+not|no\s+need|not|never|without|"
    r"rather\s+not|won'?t|wont|will\s+not|no\s+thanks|no\s+longer|nor|neither|instead\s+of|avoid|"
    r"unless)\b",
    re.IGNORECASE,
)
_RHETORICAL = re.compile(r"\b(?:why|how\s+come)\b", re.IGNORECASE)
_CLAUSE_SPLIT = re.compile(r"[,.;:!?\n]+|\s+(?:but|however|though|although|so)\s+", re.IGNORECASE)
_NEGATION_WINDOW_WORDS = 5
_FRAMES_WITH_OWN_NEGATION = {"anti_bot"}  # "I don't want a bot" is itself the request


def _normalise(text: str) -> str:
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    # "huuuuman", "pleeease", "agentttt" -> one letter (runs of two are normal spelling)
    text = re.sub(r"([a-zA-Z])\1{2,}", r"\1", text)
    text = re.sub(r"\bu\b", "you", text, flags=re.IGNORECASE)
    return text


def _negated(clause: str, start: int) -> bool:
    # the match's first word counts too: "no | need to talk to a person"
    first_word = clause[start:].split(maxsplit=1)[:1]
    prefix = " ".join([*clause[:start].split()[-_NEGATION_WINDOW_WORDS:], *first_word])
    if not _NEGATION.search(prefix):
        return False
    # "why won't you let me talk to a human" is a complaint, not a refusal
    return not _RHETORICAL.search(clause[:start])


def find_human_request(text: str) -> str | None:
    """The phrase that asks for a person, or None. Pure and fast (a few regexes per clause)."""
    text = _normalise(text)
    if _BARE.match(text):
        return text.strip()
    for clause in _CLAUSE_SPLIT.split(text):
        for name, pattern in _FRAMES:
            for m in pattern.finditer(clause):
                if name in _FRAMES_WITH_OWN_NEGATION or not _negated(clause, m.start()):
                    return m.group(0).strip()
    return None


# --- keywords ------------------------------------------------------------------------------------------


def compile_keywords(keywords: Iterable[str]) -> list[tuple[str, re.Pattern[str]]]:
    """One case-insensitive, word-bounded pattern per keyword phrase.

    Whitespace inside a phrase matches any run of spaces; the last word also matches its
    simple inflections (lawyer -> lawyers, sue -> sued/suing, chargeback -> chargebacks).
    """
    compiled: list[tuple[str, re.Pattern[str]]] = []
    for keyword in keywords:
        words = keyword.strip().lower().split()
        if not words:
            continue
        last = re.escape(words[-1])
        if words[-1].endswith("e") and len(words[-1]) > 2:
            last = rf"(?:{last}(?:s|d)?|{re.escape(words[-1][:-1])}ing)"
        else:
            last = rf"{last}(?:s|es|ed|ing)?"
        body = r"\s+".join([*(re.escape(w) for w in words[:-1]), last])
        compiled.append((keyword.strip(), re.compile(rf"(?<![\w-]){body}(?![\w-])", re.IGNORECASE)))
    return compiled


# one-word keywords that are also first names: written as a name ("Sue", not "sue" or "SUE", and not
# inflected: names do not become "Sued"), they are a name, not the keyword
NAME_LIKE = frozenset({"sue", "bill", "rob", "pat", "mark"})


def find_keywords(text: str, compiled: list[tuple[str, re.Pattern[str]]]) -> list[str]:
    """The configured keywords found in `text`, in configuration order."""
    text = _normalise(text)
    return [keyword for keyword, pattern in compiled if any(_counts(keyword, m) for m in pattern.finditer(text))]


def _counts(keyword: str, match: re.Match[str]) -> bool:
    word = match.group(0)
    if keyword.lower() in NAME_LIKE and word.istitle() and word.lower() == keyword.lower():
        return False  # "Hi, this is Sue": a name
    return True
