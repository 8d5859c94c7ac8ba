"""The extractive summary and the mood scorer."""

from __future__ import annotations

from handoff.sentiment import is_shouting, mood
from handoff.summary import MAX_SENTENCE_CHARS, content_words, sentences, summarize


def test_greetings_and_filler_never_make_the_summary() -> None:
    texts = [
        "hi",
        "hello?",
        "thanks!",
        "ok",
        "My parcel 7781 never arrived.",
        "The tracking page shows an error.",
    ]
    assert summarize(texts) == ["My parcel 7781 never arrived.", "The tracking page shows an error."]


def test_summary_keeps_conversation_order_and_at_most_three() -> None:
    texts = [
        "My invoice for March shows a double charge of 49 euros.",
        "ok",
        "The app logs me out every time I open the billing page.",
        "I also changed my card last week and the old card was charged.",
        "The double charge is still pending on my card statement.",
        "yes",
    ]
    summary = summarize(texts)
    assert 2 <= len(summary) <= 3
    positions = [next(i for i, t in enumerate(texts) if s in t) for s in summary]
    assert positions == sorted(positions)
    assert summary[0] == texts[0]  # the opening problem statement, with its amount


def test_a_weak_third_sentence_is_dropped() -> None:
    texts = [
        "Refund refund refund for order 1234, refund the damaged order 1234 please.",
        "Order 1234 refund still missing, damaged order refund.",
        "Weather nice today.",
    ]
    assert summarize(texts) == texts[:2]


def test_summary_is_deterministic_and_clipped() -> None:
    long = "The checkout " + "keeps failing with error code 500 " * 20 + "today."
    texts = [long, "Card payments fail too.", "Paypal payments fail as well."]
    first = summarize(texts)
    assert first == summarize(list(texts))
    assert all(len(s) <= MAX_SENTENCE_CHARS for s in first)
    assert first[0].endswith("\u2026")


def test_nothing_to_summarise() -> None:
    assert summarize([]) == []
    assert summarize(["", "hi", "thanks"]) == []


def test_sentences_and_words() -> None:
    assert sentences(["One. Two!\nThree?", "  "]) == [(0, "One."), (0, "Two!"), (0, "Three?")]
    assert content_words("I can't log in to my account 42") == ["log", "account", "42"]


def test_mood_reads_the_worst_sentence_and_shouting() -> None:
    calm = mood("Thanks for the update, great, thanks.")
    mixed = mood("Thanks for the update, great, thanks. This is awful, I am furious.")
    assert calm.compound > 0 and mixed.compound < -0.6
    loud = mood("THIS IS UNACCEPTABLE!!!")
    quiet = mood("this is unacceptable")
    assert loud.shouting and loud.exclaiming and loud.score < loud.compound
    assert not quiet.shouting and quiet.score == quiet.compound
    happy = mood("THANK YOU SO MUCH!!!")
    assert happy.shouting and happy.score == happy.compound > 0  # shouting alone is not anger


def test_is_shouting_needs_enough_letters() -> None:
    assert is_shouting("WHERE IS MY ORDER")
    assert not is_shouting("OK!!")  # too short to tell
    assert not is_shouting("Where is my ORDER")
