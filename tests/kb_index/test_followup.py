"""Searching a message in its conversation: the views, the features, the ranking model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kb_index import followup as fu
from kb_index.lexical import Lexical
from kb_index.types import Hit


def hit(art: str, conf: float) -> Hit:
    return Hit(article_id=art, title=art, snippet="", answer=f"{art} answer", score=conf, confidence=conf)


VIEWS = fu.Views(
    alone=[hit("gift", 0.5), hit("delete", 0.1)],
    context=[hit("delete", 0.7), hit("gift", 0.2)],
    before=[hit("delete", 0.9)],
)


def test_features_describe_each_candidate_in_its_context() -> None:
    ids, X = fu.features(VIEWS, "can I still use my gift card after?", "delete")
    assert ids == ["gift", "delete"] and X.shape == (2, len(fu.FEATURES))
    col = {f: X[:, i] for i, f in enumerate(fu.FEATURES)}
    assert list(col["alone"]) == [0.5, 0.1] and list(col["context"]) == [0.2, 0.7]
    assert list(col["last"]) == [0.0, 1.0] and list(col["alone_top"]) == [1.0, 0.0]
    assert list(col["alone_rival"]) == [0.1, 0.5] and list(col["before_best"]) == [0.9, 0.9]


def test_rank_orders_by_the_model_and_reports_its_probability() -> None:
    prior = fu.Model(tuple(3.0 if f == "last" else 0.0 for f in fu.FEATURES), -1.0)
    hits = fu.rank(VIEWS, "and after?", "delete", prior, k=2)
    assert [h.article_id for h in hits] == ["delete", "gift"]
    assert hits[0].confidence == pytest.approx(1 / (1 + np.exp(-2.0)))
    assert hits[1].confidence == pytest.approx(1 / (1 + np.exp(1.0)))
    assert hits[0].answer == "delete answer"


async def test_no_earlier_turn_is_one_plain_search() -> None:
    calls: list[str] = []

    async def search_text(text: str, k: int) -> list[Hit]:
        calls.append(text)
        return [hit("gift", 0.9)]

    model = fu.Model.load()
    assert await fu.search(search_text, "gift cards?", history=["  "], last_article=None, model=model)
    assert calls == ["gift cards?"]
    await fu.search(search_text, "does it expire?", history=["gift cards?"], last_article="gift", model=model)
    assert sorted(calls[1:]) == ["does it expire?", "gift cards?", "gift cards? does it expire?"]


def test_the_shipped_model_matches_the_features_and_a_stale_one_is_refused(tmp_path: Path) -> None:
    model = fu.Model.load()
    assert len(model.coef) == len(fu.FEATURES) and "tune" in model.fitted_on
    assert json.loads(fu.MODEL_PATH.read_text())["version"] == fu.MODEL_VERSION == 2
    assert model.coef[fu.FEATURES.index("unknown")] < 0  # words the KB never uses lower the trust
    stale = tmp_path / "m.json"
    stale.write_text(json.dumps({"features": ["alone"], "coef": [1.0], "intercept": 0.0}))
    with pytest.raises(ValueError, match="refit"):
        fu.Model.load(stale)
    model.save(tmp_path / "again.json")
    assert fu.Model.load(tmp_path / "again.json") == model


def test_a_version_1_file_loads_as_it_was_and_a_mislabelled_one_is_refused(tmp_path: Path) -> None:
    coef = [0.5] * len(fu.V1_FEATURES)
    old = tmp_path / "v1.json"
    old.write_text(json.dumps({"features": list(fu.V1_FEATURES), "coef": coef, "intercept": -1.0}))
    model = fu.Model.load(old)
    assert model.coef == (*coef, 0.0) and model.intercept == -1.0  # "unknown" plays no part
    ids, X = fu.features(VIEWS, "tell me a joke", "delete", unknown=1.0)
    ids, X0 = fu.features(VIEWS, "tell me a joke", "delete")
    assert list(model.predict(X)) == list(model.predict(X0))
    wrong = tmp_path / "v2-short.json"
    wrong.write_text(json.dumps({"version": 2, "features": list(fu.V1_FEATURES), "coef": coef, "intercept": 0.0}))
    with pytest.raises(ValueError, match="version 2"):
        fu.Model.load(wrong)
    future = tmp_path / "v3.json"
    future.write_text(json.dumps({"version": 3, "features": list(fu.FEATURES), "coef": [*coef, 0.0], "intercept": 0}))
    with pytest.raises(ValueError, match="refit"):
        fu.Model.load(future)


def test_words_the_kb_never_uses_hand_the_message_to_people_without_reordering() -> None:
    ids, X = fu.features(VIEWS, "tell me a joke", "delete", unknown=0.5)
    assert list(X[:, fu.FEATURES.index("unknown")]) == [0.5, 0.5]  # the same for every candidate
    scope = fu.Model(tuple(3.0 if f == "last" else -4.0 if f == "unknown" else 0.0 for f in fu.FEATURES), 0.0)
    known = fu.rank(VIEWS, "and after?", "delete", scope, k=2)
    off = fu.rank(VIEWS, "tell me a joke", "delete", scope, k=2, unknown=1.0)
    assert [h.article_id for h in off] == [h.article_id for h in known] == ["delete", "gift"]
    assert known[0].confidence == pytest.approx(1 / (1 + np.exp(-3.0)))
    assert off[0].confidence == pytest.approx(1 / (1 + np.exp(1.0)))


async def test_search_passes_the_unknown_share_to_the_model() -> None:
    async def search_text(text: str, k: int) -> list[Hit]:
        return [hit("gift", 0.9)]

    scope = fu.Model(tuple(-10.0 if f == "unknown" else 0.0 for f in fu.FEATURES), 5.0)
    sure = await fu.search(search_text, "does it expire?", history=["gift cards?"], last_article=None, model=scope)
    off = await fu.search(
        search_text, "tell me a joke", history=["gift cards?"], last_article=None, model=scope, unknown=1.0
    )
    assert sure[0].confidence > 0.99 and off[0].confidence < 0.01


def test_a_hit_found_with_the_earlier_turn_says_so() -> None:
    prior = fu.Model(tuple(3.0 if f == "last" else 0.0 for f in fu.FEATURES), -1.0)
    hits = fu.rank(VIEWS, "and after?", "delete", prior, k=2, prev="how do I delete my account?")
    assert hits[0].context == "how do I delete my account?"  # not the message's own top article
    mine = fu.Model(tuple(3.0 if f == "alone_top" else 0.0 for f in fu.FEATURES), -1.0)
    own = fu.rank(VIEWS, "gift card?", None, mine, k=1, prev="how do I delete my account?")
    assert own[0].article_id == "gift" and own[0].context is None  # its own top, no surer with the turn


def test_unknown_share_counts_words_no_row_uses() -> None:
    lex = Lexical.build(["How long do I have to return an item?", "Returns are free within 30 days"])
    assert lex.unknown_share("how long do I have?") == 0.0  # the KB's own words (and stop words)
    assert lex.unknown_share("it was 45 days") == 0.0  # numbers are a follow-up's content, not off-topic
    assert lex.unknown_share("tell me a joke") == 1.0  # "tell", "me", "joke"
    assert lex.unknown_share("returning a joke") == 0.5  # stemmed: "return" is known
    assert lex.unknown_share("?!") == 0.0 and Lexical.build([""]).unknown_share("joke") == 1.0
