import numpy as np
import pytest

from kb_index import storage
from kb_index.calibrate import dense_neighbours


@pytest.mark.parametrize(("n", "d", "q", "k"), [(1, 3, 1, 1), (17, 5, 3, 5), (203, 31, 7, 50), (5, 8, 2, 9)])
def test_flat_faiss_matches_numpy_brute_force(n: int, d: int, q: int, k: int) -> None:
    rng = np.random.default_rng(n * d)
    V = rng.normal(size=(n, d)).astype(np.float32)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    Q = rng.normal(size=(q, d)).astype(np.float32)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    index = storage.make_faiss(V)
    kk = min(k, n)
    dist, ids = index.search(Q, kk)
    brute = Q @ V.T
    expect = np.argsort(-brute, axis=1, kind="stable")[:, :kk]
    np.testing.assert_allclose(dist, np.take_along_axis(brute, expect, 1), rtol=1e-5, atol=1e-5)
    # ids agree wherever scores are not tied
    np.testing.assert_allclose(
        np.take_along_axis(brute, ids, 1), np.take_along_axis(brute, expect, 1), atol=1e-5
    )
    # the validation path's numpy neighbours agree too
    na, ns, _ = dense_neighbours(Q, V, np.arange(n), np.ones(n, np.int64), kk, None)
    np.testing.assert_allclose(ns, dist, atol=1e-5)


def test_ivf_beyond_flat_limit_finds_exact_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "FLAT_LIMIT", 500)
    rng = np.random.default_rng(3)
    V = rng.normal(size=(2000, 16)).astype(np.float32)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    index = storage.make_faiss(V)
    assert "IVF" in type(index).__name__
    _, ids = index.search(V[:50], 1)
    assert (ids[:, 0] == np.arange(50)).mean() >= 0.95
    np.testing.assert_allclose(storage.all_vectors(index)[np.arange(5)], V[:5], atol=1e-6)
