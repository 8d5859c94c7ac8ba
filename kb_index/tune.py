"""Optional on-box tuning: a contrastive fine-tune of the embedding model on pairs of phrasings
of the same article (MultipleNegativesRankingLoss), saved beside the index in ``tuned-model/``.
``Embedder.for_index`` picks it up; re-ingest to rebuild the index with it."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from kb_index import storage
from kb_index.embed import TUNED_DIR, Embedder
from kb_index.errors import IndexNotFoundError


def _train_mnrl(
    model: Any,
    pairs: list[tuple[str, str]],
    *,
    epochs: int,
    seed: int,
    batch_size: int = 32,
    lr: float = 2e-5,
    scale: float = 20.0,
) -> None:
    """Multiple-negatives ranking loss with in-batch negatives, as a plain torch loop.

    (sentence-transformers' `fit` needs the `datasets` and `accelerate` packages; this is the
    same objective without them: for each pair (a, b), b must be a's nearest among the batch.)
    """
    import torch  # noqa: PLC0415 heavy: torch loads only for kb tune
    import torch.nn.functional as F  # noqa: PLC0415 heavy: as above

    torch.manual_seed(seed)
    rng = random.Random(seed)
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    steps = max(1, epochs * ((len(pairs) + batch_size - 1) // batch_size))
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, (steps - step) / steps)
    )

    def embed(texts: list[str]) -> Any:
        prepare = getattr(model, "preprocess", None) or model.tokenize  # `tokenize` is deprecated in ST 6
        features = prepare(texts)
        features = {k: v.to(device) if hasattr(v, "to") else v for k, v in features.items()}
        return F.normalize(model(features)["sentence_embedding"], dim=-1)

    model.train()
    try:
        for _ in range(epochs):
            order = pairs[:]
            rng.shuffle(order)
            for i in range(0, len(order), batch_size):
                batch = order[i : i + batch_size]
                if len(batch) < 2:
                    continue
                a = embed([x for x, _ in batch])
                b = embed([y for _, y in batch])
                logits = scale * a @ b.T
                loss = F.cross_entropy(logits, torch.arange(len(batch), device=device))
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                schedule.step()
    finally:
        model.eval()


def tune(
    index_dir: Path, *, base_model: str | None = None, epochs: int = 1, max_pairs: int = 20000, seed: int = 0
) -> Path:
    cur = storage.current_version(Path(index_dir))
    if cur is None:
        raise IndexNotFoundError(Path(index_dir))
    rows = [json.loads(x) for x in (cur[1] / "chunks.jsonl").read_text().splitlines() if x]
    by_article: dict[str, list[str]] = {}
    for r in rows:
        if r["kind"] in ("question", "learned", "passage"):
            by_article.setdefault(r["article"], []).append(r["text"])
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    for texts in by_article.values():
        if len(texts) < 2:
            continue
        shuffled = texts[:]
        rng.shuffle(shuffled)
        pairs.extend(zip(shuffled[::2], shuffled[1::2], strict=False))
    rng.shuffle(pairs)
    pairs = pairs[:max_pairs]
    if not pairs:
        raise ValueError("no articles with two or more phrasings: nothing to tune on")
    base = Embedder.load(
        base_model, backend="torch"
    )  # trained in PyTorch; served through the same ONNX export
    model: Any = base._model
    _train_mnrl(model, pairs, epochs=epochs, seed=seed)
    out = Path(index_dir) / TUNED_DIR
    model.save(str(out))
    (out / "switchboard_model_name.txt").write_text(f"{base.name}+tuned-{int(time.time())}\n")
    return out
