"""The article classifiers fitted at build time (and refitted as agents add phrasings): a
multinomial logistic regression over the embedding. The lexical head lives in ``lexhead``."""

from __future__ import annotations

import numpy as np

HEAD_MAX_ROWS = 300_000
HEAD_MAX_ARTICLES = 5_000


def wants_heads(n_articles: int, n_phrasings: int, n_positive: int) -> bool:
    """Whether to fit the article classifiers: they pay off for intent-like KBs (several
    phrasings per article), not for passages alone, and are capped in size."""
    return (
        2 <= n_articles <= HEAD_MAX_ARTICLES and 3 * n_articles <= n_phrasings and n_positive <= HEAD_MAX_ROWS
    )


def fit_head(
    X: np.ndarray, y: np.ndarray, n_classes: int, *, c: float = 30.0
) -> tuple[np.ndarray, np.ndarray]:
    """A multinomial logistic regression over the embedding (one weight row per article), fitted
    with full-batch L-BFGS in torch: the objective of scikit-learn's ``LogisticRegression(C=c)``
    at a fraction of its time."""
    import torch  # noqa: PLC0415 heavy: torch loads only to fit a head

    W = np.zeros((n_classes, X.shape[1]), dtype=np.float32)
    b = np.full(n_classes, -1e4, dtype=np.float32)  # articles with no rows are never predicted
    classes = np.unique(y)
    if len(classes) < 2:
        b[classes] = 0.0
        return W, b
    remap = np.full(n_classes, -1, dtype=np.int64)
    remap[classes] = np.arange(len(classes))
    xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
    yt = torch.from_numpy(remap[y])
    w = torch.zeros((len(classes), X.shape[1]), requires_grad=True)
    bias = torch.zeros(len(classes), requires_grad=True)
    lam = 1.0 / (c * len(X))
    opt = torch.optim.LBFGS(
        [w, bias], lr=1.0, max_iter=150, tolerance_grad=1e-5, history_size=20, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w.T + bias, yt) + 0.5 * lam * (w * w).sum()
        loss.backward()  # type: ignore[no-untyped-call]
        return loss

    opt.step(closure)  # type: ignore[no-untyped-call]
    W[classes] = w.detach().numpy()
    b[classes] = bias.detach().numpy()
    return W, b
