"""Asking for a person, in many phrasings, and keyword matching."""

from __future__ import annotations

import time

import pytest

from handoff.phrases import compile_keywords, find_human_request, find_keywords

ASKS_FOR_A_PERSON = [
    "talk to a person",
    "can I speak to someone",
    "real human please",
    "agent!",
    "representative",
    "I want to talk to a manager",
    "is this a bot?",
    "stop the bot",
    "Can i tlak to a humna",
    "let me speak with an actual human being",
    "HUMAN",
    "human pls",
    "agent agent agent",
    "operator?!",
    "I need a real person NOW",
    "get me a manager",
    "transfer me to an agent",
    "put me through to customer service",
    "connect me with someone",
    "is there a human I can talk to?",
    "am I talking to a robot?",
    "are you a bot",
    "are u real",
    "i dont want a bot i want a human",
    "no more bots please",
    "I hate this stupid bot",
    "why can't I talk to a human?",
    "why won't you let me speak to someone",
    "can someone call me back",
    "I want to escalate this",
    "reprasentative please",
    "Speak to represenative",
    "I'd like to speak to a supervisor",
    "give me a rep",
    "huuuuman",
    "agenttttt!!!",
    "This is useless, I need to speak to somebody",
    "I don't want to wait, let me talk to a person",
    "Hi, can I chat with a live agent?",
    "Please connect me to your team",
    "i need help from a human",
    "Could I get a real person on the line",
    "I\u2019d like to talk to a human",  # typographic apostrophe
    "Order 1234 is late. Can I talk to someone about it?",
]

DOES_NOT_ASK = [
    "I don't need a human, thanks",
    "no need to talk to a person",
    "I don't want to speak to anyone, just tell me the hours",
    "Can I do this without talking to an agent?",
    "My travel agent booked the flight",
    "The person at the store said I could return it",
    "How do I change my user agent?",
    "I need the human resources phone number",
    "The agent was rude yesterday",
    "I spoke to an agent yesterday and they fixed it",
    "Thanks, that answered it!",
    "Where is my parcel?",
    "Please don't transfer me to an agent, I'm almost done",
    "I'd rather not speak to anyone",
    "I'm not a robot, the captcha keeps failing",
    "Can someone tell me the opening hours?",
    "People say your product is great",
    "Do you speak English?",
    "Is this a good time to order?",
    "is this the right address for returns",
    "I talked to a person yesterday",
    "Is the manager's special still on?",
    "my manager wants an invoice",
    "Nevermind, no need for a representative",
    "how do I add a team member to my account",
    "",
]


@pytest.mark.parametrize("text", ASKS_FOR_A_PERSON)
def test_asks_for_a_person(text: str) -> None:
    assert find_human_request(text), text


@pytest.mark.parametrize("text", DOES_NOT_ASK)
def test_does_not_ask_for_a_person(text: str) -> None:
    assert find_human_request(text) is None, text


def test_evidence_is_the_phrase_that_asked() -> None:
    assert find_human_request("hello. could I please speak to a real person today") == (
        "speak to a real person"
    )


def test_negation_only_reaches_its_own_clause() -> None:
    assert find_human_request("I don't need the article, but I want an agent") == "want an agent"
    assert find_human_request("I don't want an agent") is None


def test_long_hostile_input_stays_fast() -> None:
    texts = ["agent " * 300 + "x", "please " * 300 + "x", "talk to " + "a " * 800 + "x", "the " * 2000]
    start = time.perf_counter()
    for text in texts:
        find_human_request(text)
    assert time.perf_counter() - start < 0.5


KEYWORDS = ("lawyer", "legal action", "chargeback", "sue", "cancel my account", "fraud")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I'll talk to my LAWYER about this", ["lawyer"]),
        ("our lawyers will be in touch", ["lawyer"]),
        ("I will take legal   action", ["legal action"]),
        ("I'm filing a chargeback with my bank", ["chargeback"]),
        ("two chargebacks already", ["chargeback"]),
        ("I am going to sue you", ["sue"]),
        ("I'm suing", ["sue"]),
        ("I sued them last year", ["sue"]),
        ("I WILL SUE", ["sue"]),
        ("Sue here. I will sue you if this is not fixed", ["sue"]),  # the name does not hide the verb
        ("Sued? Yes, we are suing", ["sue"]),  # inflected: never a name
        ("Please cancel my account today", ["cancel my account"]),
        ("this is FRAUD and a chargeback", ["chargeback", "fraud"]),
    ],
)
def test_keywords_found(text: str, expected: list[str]) -> None:
    assert find_keywords(text, compile_keywords(KEYWORDS)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "the pursuer was fast",  # 'sue' inside a word
        "Hi, this is Sue from accounting",  # a name
        "My wife Sue ordered the blue one. Thanks, Sue",
        "issue with my order",
        "the issued invoice",
        "lawyerly prose",
        "cancel my order please",
        "legal documents for my account",
        "a fraudster-proof lock",  # fraud + ster is another word
        "charge back later",
    ],
)
def test_keywords_need_word_boundaries(text: str) -> None:
    assert find_keywords(text, compile_keywords(KEYWORDS)) == []


def test_blank_keywords_are_ignored() -> None:
    assert [k for k, _ in compile_keywords(["", "  ", "fraud"])] == ["fraud"]
