"""Optional on-box tuning: a contrastive fine-tune of the embedding model on pairs of phrasings
of the same article (MultipleNegativesRankingLoss), saved beside the index in ``tuned-model/``.
``Embedder.for_index`` picks it up; re-ingest to rebuild the index with it."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from kb_index import storage
from kb_index.embed import TUNED_DIR, Embedder
from kb_index.errors import IndexNotFoundError


def tune(
    index_dir: Path, *, base_model: str | None = None, epochs: int = 1, max_pairs: int = 20000, seed: int = 0
) -> Path:
    cur = storage.current_version(Path(index_dir))
    if cur is None:
        raise IndexNotFoundError(Path(index_dir))
    import json

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
    from sentence_transformers import InputExample
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from torch.utils.data import DataLoader

    base = Embedder.load(base_model)
    model: Any = base._model
    examples = [InputExample(texts=[a, b]) for a, b in pairs]
    loader: Any = DataLoader(examples, shuffle=True, batch_size=32)  # type: ignore[arg-type]
    loss = MultipleNegativesRankingLoss(model)
    model.fit(train_objectives=[(loader, loss)], epochs=epochs, show_progress_bar=True)
    out = Path(index_dir) / TUNED_DIR
    model.save(str(out))
    (out / "switchboard_model_name.txt").write_text(f"{base.name}+tuned-{int(time.time())}\n")
    return out
