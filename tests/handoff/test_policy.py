"""Each escalation trigger on its own (fires / must not fire), then precedence and configuration."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace

import pytest

from handoff.errors import HandoffError, PolicyConfigError, UnknownTriggerError
from handoff.policy import (
    ALL_TRIGGERS,
    ASKED_FOR_HUMAN,
    BOT_REPEATING,
    KEYWORD,
    LOW_CONFIDENCE,
    NEGATIVE_SENTIMENT,
    VIP,
    Decision,
    Policy,
    PolicyConfig,
    Turn,
    parse_triggers,
)
from kb_index.types import Hit

RETURNS_ANSWER = (
    "You can return any item within 30 days of delivery. Start a return from Orders > Return item, "
    "print the label and drop the parcel at any post office."
)


def hit(confidence: float, *, answer: str = RETURNS_ANSWER, article_id: str = "returns") -> Hit:
    return Hit(
        article_id=article_id,
        title="Returns and refunds",
        snippet=answer[:40],
        answer=answer,
        score=confidence * 10,
        confidence=confidence,
    )


def only(trigger: str, **config: object) -> Policy:
    return Policy(PolicyConfig(enabled=frozenset({trigger}), **config))  # type: ignore[arg-type]


def turn(
    text: str = "where is my parcel?",
    *,
    state: str = "bot",
    hits: Sequence[Hit] = (),
    streak: int = 0,
    replies: Sequence[str] = (),
    vip: bool = False,
    flagged: bool = False,
    candidate: str | None = None,
) -> Turn:
    return Turn(
        text=text,
        state=state,
        hits=hits,
        low_confidence_streak=streak,
        previous_bot_replies=replies,
        customer_vip=vip,
        customer_flagged=flagged,
        candidate_reply=candidate,
    )


# ---- asked_for_human ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["agent!", "can I speak to someone", "is this a bot?", "stop the bot"])
def test_asked_for_human_fires(text: str) -> None:
    decision = only(ASKED_FOR_HUMAN).decide(turn(text, hits=[hit(0.95)]))
    assert decision is not None
    assert (decision.trigger, decision.target, decision.priority) == (ASKED_FOR_HUMAN, "agent", "normal")
    assert "asked for a person" in decision.evidence


@pytest.mark.parametrize("text", ["I don't need a human", "my travel agent booked it", "where is my parcel?"])
def test_asked_for_human_does_not_fire(text: str) -> None:
    assert only(ASKED_FOR_HUMAN).decide(turn(text)) is None


# ---- low_confidence --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "streak", "hits"),
    [(2, 1, [hit(0.3)]), (2, 5, []), (3, 2, [hit(0.59)]), (1, 0, [hit(0.1)])],
)
def test_low_confidence_fires_after_n_turns(limit: int, streak: int, hits: list[Hit]) -> None:
    decision = only(LOW_CONFIDENCE, low_confidence_limit=limit).decide(turn(hits=hits, streak=streak))
    assert decision is not None
    assert decision.trigger == LOW_CONFIDENCE and decision.target == "agent"
    top = hits[0].confidence if hits else 0.0
    assert f"top confidence {top:.2f} < 0.60 for {streak + 1} turns in a row" in decision.evidence


@pytest.mark.parametrize(
    ("limit", "streak", "hits"),
    [(2, 0, [hit(0.3)]), (3, 1, []), (2, 4, [hit(0.6)]), (2, 9, [hit(0.95)])],
)
def test_low_confidence_does_not_fire(limit: int, streak: int, hits: list[Hit]) -> None:
    """Below the limit, or the bot is confident this turn (whatever the streak)."""
    assert only(LOW_CONFIDENCE, low_confidence_limit=limit).decide(turn(hits=hits, streak=streak)) is None


def test_low_confidence_uses_the_configured_threshold() -> None:
    policy = only(LOW_CONFIDENCE, answer_threshold=0.8)
    assert policy.decide(turn(hits=[hit(0.7)], streak=1)) is not None
    assert policy.decide(turn(hits=[hit(0.85)], streak=1)) is None


# ---- negative_sentiment ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "I am so angry, you people are useless",
        "I hate this, it is a scam and a total disgrace",
        "THIS IS THE WORST SERVICE EVER",
        "terrible terrible terrible",
        # positive overall (VADER +0.49), but one furious sentence
        "Thanks for the update, great, thanks. This is awful, I am furious.",
        "THIS IS UNACCEPTABLE!!!",  # VADER -0.596 alone; shouting and !!! push it over
    ],
)
def test_negative_sentiment_fires(text: str) -> None:
    decision = only(NEGATIVE_SENTIMENT).decide(turn(text))
    assert decision is not None
    assert (decision.trigger, decision.target, decision.priority) == (NEGATIVE_SENTIMENT, "agent", "high")
    assert "compound -" in decision.evidence and "<= -0.60" in decision.evidence


@pytest.mark.parametrize(
    "text",
    [
        "where is my parcel?",
        "THANK YOU SO MUCH!!!",  # shouting, but happy
        "WHERE IS MY ORDER???",  # shouting, but not negative words
        "my order arrived damaged",  # mildly negative
        "not bad at all",
        "this is unacceptable",  # the same words, calmly: -0.46
    ],
)
def test_negative_sentiment_does_not_fire(text: str) -> None:
    assert only(NEGATIVE_SENTIMENT).decide(turn(text)) is None


def test_sentiment_threshold_is_configurable() -> None:
    text = "my order arrived damaged"  # about -0.44
    assert only(NEGATIVE_SENTIMENT, sentiment_threshold=-0.3).decide(turn(text)) is not None
    assert only(NEGATIVE_SENTIMENT, sentiment_threshold=-0.6).decide(turn(text)) is None


def test_shouting_is_reported_as_evidence() -> None:
    decision = only(NEGATIVE_SENTIMENT).decide(turn("THIS IS UNACCEPTABLE!!!"))
    assert decision is not None
    assert "shouting" in decision.evidence and "repeated !!!" in decision.evidence


# ---- keyword -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("I'm calling my lawyer", "lawyer"),
        ("I will file a CHARGEBACK", "chargeback"),
        ("I'm going to sue", "sue"),
        ("just cancel my account", "cancel my account"),
        ("this is fraud", "fraud"),
    ],
)
def test_keyword_fires_to_a_supervisor(text: str, keyword: str) -> None:
    decision = only(KEYWORD).decide(turn(text, hits=[hit(0.99)]))
    assert decision is not None
    assert (decision.trigger, decision.target, decision.priority) == (KEYWORD, "supervisor", "high")
    assert repr(keyword) in decision.evidence


@pytest.mark.parametrize(
    "text", ["I have an issue with my order", "how do I cancel my order", "legally blonde"]
)
def test_keyword_does_not_fire(text: str) -> None:
    assert only(KEYWORD).decide(turn(text)) is None


def test_keywords_are_configurable() -> None:
    policy = only(KEYWORD, keywords=("gdpr request", "ombudsman"))
    decision = policy.decide(turn("this is a GDPR request"))
    assert decision is not None and "'gdpr request'" in decision.evidence
    assert policy.decide(turn("I'll call my lawyer")) is None


# ---- vip ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vip", "flagged", "evidence"),
    [
        (True, False, "VIP customer"),
        (False, True, "flagged customer"),
        (True, True, "VIP and flagged customer"),
    ],
)
def test_vip_or_flagged_fires(vip: bool, flagged: bool, evidence: str) -> None:
    decision = only(VIP).decide(turn(hits=[hit(0.99)], vip=vip, flagged=flagged))
    assert decision == Decision(VIP, evidence, "agent", "high")


def test_vip_does_not_fire_for_ordinary_customers() -> None:
    assert only(VIP).decide(turn(hits=[hit(0.99)])) is None


# ---- bot_repeating ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "replies",
    [
        [RETURNS_ANSWER],  # exactly the last reply
        [RETURNS_ANSWER, "Anything else?"],  # the reply before last
        ["Hi! " + RETURNS_ANSWER + " Hope that helps."],  # same article, wrapped differently
        [RETURNS_ANSWER.replace("30 days", "30 days!").upper()],  # case and punctuation only
    ],
)
def test_bot_repeating_fires(replies: list[str]) -> None:
    decision = only(BOT_REPEATING).decide(turn(hits=[hit(0.9)], replies=replies))
    assert decision is not None
    assert decision.trigger == BOT_REPEATING and decision.target == "agent"
    assert "article returns 'Returns and refunds'" in decision.evidence


def test_bot_repeating_uses_the_candidate_reply_when_given() -> None:
    decision = only(BOT_REPEATING).decide(
        turn(hits=[], replies=["Our hours are 9-5."], candidate="our hours are 9-5")
    )
    assert decision is not None and "last reply" in decision.evidence


@pytest.mark.parametrize(
    ("hits", "replies"),
    [
        ([hit(0.9)], ["Shipping takes 3-5 working days."]),  # a different answer
        ([hit(0.9)], [RETURNS_ANSWER, "a", "b"]),  # repeated, but three replies ago
        ([hit(0.3)], [RETURNS_ANSWER]),  # not confident: the bot would not send it
        ([], [RETURNS_ANSWER]),
        ([hit(0.9)], []),
    ],
)
def test_bot_repeating_does_not_fire(hits: list[Hit], replies: list[str]) -> None:
    assert only(BOT_REPEATING).decide(turn(hits=hits, replies=replies)) is None


# ---- agent_escalate --------------------------------------------------------------------------------------


def test_agent_escalation_goes_to_a_supervisor() -> None:
    decision = Policy(PolicyConfig()).agent_escalation(by="U123 (Dana)", reason="refund over limit")
    assert decision == Decision(
        "agent_escalate", "escalated by U123 (Dana): refund over limit", "supervisor", "high"
    )
    assert decision.state == "escalated"


def test_agent_escalation_is_never_a_text_trigger() -> None:
    policy = Policy(PolicyConfig())
    assert policy.decide(turn("please escalate", hits=[hit(0.9)])).trigger != "agent_escalate"  # type: ignore[union-attr]
    assert policy.agent_escalation(by="U1", reason=None).evidence == "escalated by U1"


# ---- together ---------------------------------------------------------------------------------------------


def test_nothing_fires_on_an_ordinary_confident_turn() -> None:
    assert Policy(PolicyConfig()).decide(turn("how do I return my shoes?", hits=[hit(0.9)])) is None


def test_precedence_and_merging() -> None:
    policy = Policy(PolicyConfig())
    decision = policy.decide(
        turn(
            "I want a human NOW, I'm calling my lawyer, this is a disgrace and I hate you",
            hits=[hit(0.2)],
            streak=3,
        )
    )
    assert decision is not None
    assert decision.trigger == KEYWORD
    assert decision.also == (ASKED_FOR_HUMAN, NEGATIVE_SENTIMENT, LOW_CONFIDENCE)
    assert decision.target == "supervisor"
    assert decision.priority == "urgent"  # a keyword with anger
    assert "also asked_for_human" in decision.evidence and "low_confidence" in decision.evidence


def test_asked_for_human_beats_sentiment_and_takes_the_highest_priority() -> None:
    decision = Policy(PolicyConfig()).decide(turn("this is awful and useless, I hate it. Get me a human"))
    assert decision is not None
    assert (decision.trigger, decision.target, decision.priority) == (ASKED_FOR_HUMAN, "agent", "high")
    # No KB hits: with the default limit of one turn, that turn is also a low-confidence one.
    assert decision.also == (NEGATIVE_SENTIMENT, LOW_CONFIDENCE)


def test_vip_keyword_is_urgent() -> None:
    decision = Policy(PolicyConfig()).decide(turn("I want a chargeback", hits=[hit(0.9)], vip=True))
    assert decision is not None and decision.priority == "urgent" and decision.also == (VIP,)


def test_with_people_only_supervisor_triggers_are_evaluated() -> None:
    policy = Policy(PolicyConfig())
    for state in ("waiting", "assigned"):
        assert policy.decide(turn("agent!!", state=state, vip=True, streak=9)) is None
        decision = policy.decide(turn("I'll see you in court", state=state))
        assert decision is not None and decision.trigger == KEYWORD
    assert policy.decide(turn("I'll see you in court", state="escalated")) is None
    assert policy.decide(turn("agent!!", state="resolved")) is not None  # a returning customer


def test_disabled_triggers_never_fire() -> None:
    policy = Policy(PolicyConfig(enabled=ALL_TRIGGERS - {ASKED_FOR_HUMAN, VIP}))
    assert policy.decide(turn("agent!!", hits=[hit(0.9)], vip=True)) is None


def test_decision_is_json_shaped() -> None:
    decision = Policy(PolicyConfig()).decide(turn("lawyer", vip=True))
    assert decision is not None
    assert decision.to_dict() == {
        "trigger": "keyword",
        "evidence": decision.evidence,
        "target": "supervisor",
        "priority": "urgent",
        "also": ["vip", "low_confidence"],  # no KB hits, default limit of one turn
    }


# ---- configuration ------------------------------------------------------------------------------------------


def test_parse_triggers() -> None:
    assert parse_triggers("all") == ALL_TRIGGERS
    assert parse_triggers("") == ALL_TRIGGERS
    assert parse_triggers("all,-vip") == ALL_TRIGGERS - {"vip"}
    assert parse_triggers("keyword, vip") == {"keyword", "vip"}
    with pytest.raises(UnknownTriggerError) as info:
        parse_triggers("keyword,sentiment")
    assert info.value.name == "sentiment" and isinstance(info.value, HandoffError)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("answer_threshold", 1.5),
        ("low_confidence_limit", 0),
        ("sentiment_threshold", -2.0),
        ("keywords", "a,b"),
    ],
)
def test_bad_config_is_refused(field: str, value: object) -> None:
    with pytest.raises(PolicyConfigError) as info:
        PolicyConfig(**{field: value})  # type: ignore[arg-type]
    assert info.value.field == field and info.value.value == value


def test_unknown_enabled_trigger_is_refused() -> None:
    with pytest.raises(UnknownTriggerError):
        PolicyConfig(enabled=frozenset({"keyword", "moon_phase"}))


def test_config_from_settings(settings_factory) -> None:  # type: ignore[no-untyped-def]
    settings = settings_factory(
        answer_threshold=0.7, low_confidence_limit=3, escalation_keywords="gdpr, ombudsman ,"
    )
    config = PolicyConfig.from_settings(settings)
    assert config.answer_threshold == 0.7 and config.low_confidence_limit == 3
    assert config.keywords == ("gdpr", "ombudsman")
    duck = SimpleNamespace(
        answer_threshold=0.5,
        low_confidence_limit=2,
        escalation_keywords="x",
        handoff_sentiment_threshold=-0.4,
        handoff_triggers="all,-vip",
    )
    config = PolicyConfig.from_settings(duck)
    assert config.sentiment_threshold == -0.4 and config.enabled == ALL_TRIGGERS - {"vip"}
