from pathlib import Path

import numpy as np
from scipy.sparse import hstack

from kb_index.lexhead import LexHead


def test_fast_decision_matches_scikit_learn_and_survives_save(tmp_path: Path) -> None:
    texts = [
        "where is my card",
        "card not arrived yet",
        "top up failed",
        "top-up declined twice",
        "exchange rate euro",
        "what rate for dollars",
        "card card card",
        "Rate? RATE!",
    ]
    y = np.array([0, 0, 1, 1, 2, 2, 0, 2])
    head = LexHead.fit(texts, y, 4)
    queries = ["my card hasn't arrived", "rate for euros", "zzz unknown", "card card top up", ""]
    X = hstack([v.transform(queries) for v in head.vectorizers]).tocsr()
    reference = np.asarray(X @ head.coef.T) + head.bias
    np.testing.assert_allclose(head.decision(queries), reference, atol=1e-9)
    head.save(tmp_path / "lex")
    loaded = LexHead.load(tmp_path / "lex")
    assert loaded is not None
    np.testing.assert_allclose(loaded.decision(queries), reference, atol=1e-9)
    assert reference[:, 3].max() < -1e3  # an article with no rows is never predicted
    assert loaded.decision(["card not arrived"]).argmax() == 0
