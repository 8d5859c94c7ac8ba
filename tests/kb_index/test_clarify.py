"""Which two articles a clarifying question offers, and which one a reply picks."""

from __future__ import annotations

from kb_index import clarify
from kb_index.types import Hit


def hit(art: str, conf: float) -> Hit:
    return Hit(article_id=art, title=art.title(), snippet="", answer="", score=conf, confidence=conf)


def test_two_close_unsure_articles_are_offered() -> None:
    offer = clarify.options([hit("promo", 0.55), hit("gift", 0.4), hit("misc", 0.05)])
    assert [h.article_id for h in offer] == ["promo", "gift"]


def test_nothing_is_asked_when_the_top_is_sure_far_ahead_or_alone() -> None:
    assert clarify.options([hit("promo", 0.9), hit("gift", 0.6)]) == []
    assert clarify.options([hit("promo", 0.7), hit("gift", 0.2)]) == []
    assert clarify.options([hit("promo", 0.8), hit("gift", 0.3)]) == []  # margin 0.5
    assert clarify.options([hit("promo", 0.5)]) == []
    assert clarify.options([]) == []


def test_nothing_is_asked_when_no_article_is_plausible() -> None:
    """An off-topic message scores about 0.3 on several articles: hand it to people, don't ask."""
    assert clarify.options([hit("warranty", 0.285), hit("declined", 0.285), hit("care", 0.285)]) == []
    assert clarify.options([hit("delivery", 0.35), hit("warranty", 0.27)]) == []
    assert clarify.options([]) == []


def test_the_question_is_numbered_for_sms_only() -> None:
    assert clarify.question(["A", "B"], numbered=True).splitlines()[1:3] == ["1. A", "2. B"]
    assert "\u201cA\u201d or \u201cB\u201d" in clarify.question(["A", "B"], numbered=False)


def test_a_reply_picks_by_number_id_or_title_and_otherwise_picks_nothing() -> None:
    offered = [{"article_id": "billing-promo-codes", "title": "Promo codes and discounts"},
               {"article_id": "billing-gift-cards", "title": "Gift cards"}]
    picks = {
        "1": "billing-promo-codes", " 2 ": "billing-gift-cards", "the second one": "billing-gift-cards",
        "Gift cards": "billing-gift-cards", "promo codes": "billing-promo-codes",
        "billing-gift-cards": "billing-gift-cards",
    }
    for reply, art in picks.items():
        o = clarify.pick(reply, offered)
        assert o is not None and o["article_id"] == art, reply
    for reply in ("3", "1 or 2", "I want to return my lamp, bought 2 weeks ago", "", "gift"):
        assert clarify.pick(reply, offered) is None, reply


def test_an_implausible_top_article_goes_to_people_not_to_a_question() -> None:
    # "my neighbour's parrot keeps singing opera at night" after a delivery question: two articles
    # close together, but the top one far under the serving threshold
    parrot = [hit("shipping-delivery-times", 0.42), hit("products-warranty", 0.33)]
    assert clarify.options(parrot) == []  # the default serving threshold, 0.6
    floor = clarify.TOP_MIN_SHARE * clarify.SERVING
    assert [h.article_id for h in clarify.options([hit("a", floor), hit("b", 0.3)])] == ["a", "b"]
    assert clarify.options([hit("a", floor - 0.01), hit("b", 0.3)]) == []
    # the floor follows the threshold in force (an index's calibrated one, or ANSWER_THRESHOLD)
    assert [h.article_id for h in clarify.options(parrot, threshold=0.5)] == [
        "shipping-delivery-times", "products-warranty"]
    assert clarify.options([hit("a", 0.55), hit("b", 0.4)], threshold=0.8) == []
