"""`kb tune`: a short contrastive fine-tune is saved beside the index and used from then on (slow)."""

from pathlib import Path

import pytest

from kb_index import Embedder, IndexMismatchError, KnowledgeBase, build_index
from kb_index.tune import tune

from .test_index import write_kb

pytestmark = pytest.mark.slow


async def test_tuned_model_is_saved_picked_up_and_the_index_must_be_rebuilt(
    tmp_path: Path, embedder: Embedder
) -> None:
    index = tmp_path / "index"
    build_index(write_kb(tmp_path / "kb"), index, embedder=embedder, progress=False)
    out = tune(index, max_pairs=24, epochs=1)
    assert (out / "switchboard_model_name.txt").is_file()

    tuned = Embedder.for_index(index)
    assert tuned.name != embedder.name and tuned.dim == embedder.dim
    before = embedder.encode(["where is my parcel"])
    after = tuned.encode(["where is my parcel"])
    assert abs(float((before * after).sum())) < 0.99999  # the weights really moved
    with pytest.raises(IndexMismatchError):
        KnowledgeBase.open(index, embedder=tuned)  # the old index was built with the base model

    build_index(tmp_path / "kb", index, embedder=tuned, progress=False)
    kb = KnowledgeBase.open(index, embedder=tuned)
    hits = await kb.search("my package still hasn't shown up")
    assert hits[0].article_id == "delivery"
