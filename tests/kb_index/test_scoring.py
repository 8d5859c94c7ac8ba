import numpy as np

from kb_index.scoring import BASIC_FEATURES, FEATURES, Calibrator, _top_mean, signals


def test_top_mean_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    q, k, n_articles, n = 7, 15, 5, 3
    nb_article = rng.integers(-1, n_articles, (q, k))
    nb_sim = -np.sort(-rng.random((q, k)), axis=1)
    use = (nb_article >= 0) & (rng.random((q, k)) > 0.2)
    floor = nb_sim.min(1)
    out = _top_mean(nb_article, nb_sim, use, floor, n_articles, n)
    for i in range(q):
        for a in range(n_articles):
            best = [nb_sim[i, j] for j in range(k) if use[i, j] and nb_article[i, j] == a][:n]
            want = (sum(best) + (n - len(best)) * floor[i]) / n if best else floor[i]
            assert abs(out[i, a] - want) < 1e-12


def test_calibrator_from_an_older_index_uses_only_its_own_features() -> None:
    # params.json written before the neighbourhood and coverage features: no "features" key
    rng = np.random.default_rng(1)
    old = {
        "mean": rng.random(len(BASIC_FEATURES)).tolist(),
        "std": (rng.random(len(BASIC_FEATURES)) + 0.5).tolist(),
        "coef": rng.normal(size=len(BASIC_FEATURES)).tolist(),
        "intercept": 0.3,
        "fitted": True,
    }
    cal = Calibrator(**old)
    feats = rng.random((4, len(FEATURES)))
    basic = feats[:, : len(BASIC_FEATURES)]
    z = (basic - np.array(old["mean"])) / np.array(old["std"])
    want = 1 / (1 + np.exp(-(z @ np.array(old["coef"]) + 0.3)))
    np.testing.assert_allclose(cal.predict(feats), want)


def test_fitted_calibrator_names_every_feature_and_ranks_right_above_wrong() -> None:
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(400, len(FEATURES)))
    labels = (feats[:, FEATURES.index("coverage")] + 0.3 * rng.normal(size=400) > 0).astype(int)
    cal = Calibrator.fit(feats, labels)
    assert cal.features == list(FEATURES)
    p = cal.predict(feats)
    assert p[labels == 1].mean() > 0.7 > 0.3 > p[labels == 0].mean()


def test_query_tokens_match_bm25s_tokenize() -> None:
    import bm25s

    from kb_index.lexical import _stemmer, query_tokens

    stemmer = _stemmer()
    texts = [
        "Where is my ORDER? I've been waiting since Tuesday!!",
        "a I x",  # single letters and stopwords only
        "",
        "Ünïcode café résumé naïve — 3D-printed 42 items, e-mail me@example.com",
        "running runners ran; the thing's things",
    ]
    want = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False)
    assert [query_tokens(t, stemmer) for t in texts] == want


def _signals(article: np.ndarray, sim: np.ndarray, sign: np.ndarray, n: int = 3):  # type: ignore[no-untyped-def]
    q = len(article)
    return signals(
        n_articles=n,
        nb_article=article,
        nb_sim=sim,
        nb_sign=sign,
        lex_article=np.full((q, 2), -1),
        lex_score=np.zeros((q, 2)),
        head_logits=None,
        knn_k=20,
        knn_t=0.05,
    )


def test_signals_by_brute_force_with_and_without_negatives() -> None:
    rng = np.random.default_rng(3)
    for trial in range(50):
        q, k, n = 2, 12, 4
        sim = -np.sort(-rng.random((q, k)), 1)
        art = rng.integers(-1, n, (q, k))
        sign = np.where(rng.random((q, k)) < (0.2 if trial % 2 else 0.0), -1, 1)
        s = _signals(art, sim, sign, n)
        for i in range(q):
            valid = art[i] >= 0
            floor = sim[i][valid].min() if valid.any() else 0.0
            w = np.exp((sim[i] - (sim[i][valid][0] if valid.any() else 0.0)) / 0.05) * valid
            for a in range(n):
                pos = valid & (art[i] == a) & (sign[i] > 0)
                neg = valid & (art[i] == a) & (sign[i] < 0)
                best = max([floor, *sim[i][pos]])
                assert s.maxsim[i, a] == best
                assert s.demoted[i, a] == (neg.any() and sim[i][neg].max() >= best)
                vote = (w * (art[i] == a) * np.where(sign[i] < 0, -1, 1)).sum()
                assert np.isclose(s.knn[i, a], vote / max((w * (sign[i] > 0)).sum(), 1e-9))


def test_signals_without_any_neighbour_are_floats() -> None:
    s = _signals(np.full((1, 5), -1), np.zeros((1, 5)), np.ones((1, 5), dtype=np.int64))
    assert s.knn.dtype == np.float64 and not s.knn.any() and not s.demoted.any()
