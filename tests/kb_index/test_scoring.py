import numpy as np

from kb_index.scoring import BASIC_FEATURES, FEATURES, Calibrator, _top_mean


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
