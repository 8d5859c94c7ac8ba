import numpy as np
import pytest

from kb_index.coverage import Coverage
from kb_index.lexical import Lexical

ROWS = [
    ("my card has not arrived", 0),
    ("when will my card arrive", 0),
    ("card delivery time", 0),
    ("the atm swallowed my card", 1),
    ("atm kept my card", 1),
    ("agent negative: atm card arrive", 1),
]


def make() -> tuple[Lexical, Coverage]:
    texts = [t for t, _ in ROWS]
    art = np.array([a for _, a in ROWS])
    sign = np.array([1, 1, 1, 1, 1, -1])  # the last row is an agent's negative: never counts
    lex = Lexical.build(texts)
    return lex, Coverage.from_lexical(lex, art, sign, 2)


def test_counts_rows_per_article_and_skips_negatives() -> None:
    lex, cov = make()
    vocab = lex.retriever.vocab_dict  # type: ignore[union-attr]
    card, atm = vocab["card"], vocab["atm"]
    assert cov.counts[0, card] == 3 and cov.counts[1, card] == 2
    assert cov.counts[0, atm] == 0 and cov.counts[1, atm] == 2  # not 3: the negative is skipped


def test_features_of_covered_and_uncovered_queries() -> None:
    lex, cov = make()
    q = ["my card has not arrived", "atm swallowed my card", "card zzzqx frobnicated"]
    f = cov.features(lex.search_with_tokens(q, 1)[2], np.array([0, 0, 0]))
    # all of the first query's words appear in >= 2 rows of article 0 ("has"/"not" once: partial)
    assert 0.5 < f[0, 0] <= 1.0
    # "atm"/"swallow" are rare words that article 0 never uses
    assert f[1, 0] < f[0, 0] and f[1, 1] > 0.5
    assert f[2, 2] == 2  # two words no row uses
    g = cov.features(lex.search_with_tokens(["atm swallowed my card"], 1)[2], np.array([1]))
    assert g[0, 0] > f[1, 0]


def test_empty_lexicon_reports_full_coverage() -> None:
    lex = Lexical.build(["", ""])
    cov = Coverage.from_lexical(lex, np.array([0, 1]), np.array([1, 1]), 2)
    f = cov.features(lex.search_with_tokens(["anything at all"], 1)[2], np.array([1]))
    assert f[0].tolist() == pytest.approx([1.0, 0.0, 0.0])
