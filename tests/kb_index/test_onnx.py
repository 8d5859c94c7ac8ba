"""The ONNX Runtime backends: a real export of the bundled model (once per session), parity
with PyTorch, and the cache and index invalidation when the model's files change."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from kb_index import Embedder, IndexMismatchError, KnowledgeBase, build_index
from kb_index.embed import model_folder
from kb_index.onnx_model import export_dir, fingerprint

from .fakes import HashEmbedder
from .test_index import write_kb

ROOT = Path(__file__).resolve().parents[2]


def sample_questions() -> list[dict[str, str]]:
    lines = (ROOT / "tests" / "fixtures" / "sample_questions.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if x.strip()]


def test_fingerprint_follows_the_files(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "README.md").write_text("docs")
    first = fingerprint(tmp_path)
    (tmp_path / "README.md").write_text("other docs")  # not part of the model
    assert fingerprint(tmp_path) == first
    (tmp_path / "config.json").write_text('{"hidden_size": 8}')
    second = fingerprint(tmp_path)
    assert second != first
    assert export_dir(tmp_path, "m", first, "onnx-int8") != export_dir(tmp_path, "m", second, "onnx-int8")


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown embedding backend 'gpu'"):
        Embedder.load(backend="gpu")


def test_an_index_built_with_another_backend_is_refused_and_re_embedded(tmp_path: Path) -> None:
    kb_dir = write_kb(tmp_path / "kb")
    torch_built = HashEmbedder()
    first = build_index(kb_dir, tmp_path / "index", embedder=torch_built, progress=False)  # type: ignore[arg-type]
    onnx = HashEmbedder()
    onnx.backend = "onnx-int8"  # type: ignore[attr-defined]
    with pytest.raises(IndexMismatchError, match="embed_backend"):
        KnowledgeBase.open(tmp_path / "index", embedder=onnx)  # type: ignore[arg-type]
    again = build_index(kb_dir, tmp_path / "index", embedder=onnx, progress=False)  # type: ignore[arg-type]
    assert again.embedded == first.embedded and again.reused == 0
    kb = KnowledgeBase.open(tmp_path / "index", embedder=onnx)  # type: ignore[arg-type]
    assert kb.params["embed_backend"] == "onnx-int8"


@pytest.mark.slow
def test_int8_embeddings_match_torch(embedder: Embedder, torch_embedder: Embedder) -> None:
    assert embedder.backend == "onnx-int8" and embedder.model_hash == torch_embedder.model_hash
    texts = [q["text"] for q in sample_questions()] + ["hi", "a" * 3000]  # very short, and truncated
    a, b = torch_embedder.encode(texts), embedder.encode(texts)
    assert a.shape == b.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-4)
    cos = (a * b).sum(1)
    assert cos.mean() >= 0.98 and cos.min() >= 0.95, cos
    # one text at a time or in a padded batch: the same vectors
    lone = np.stack([embedder.encode([t])[0] for t in texts])
    np.testing.assert_array_equal(lone, b)


@pytest.mark.slow
async def test_int8_keeps_the_sample_kbs_top_answers(
    tmp_path: Path, embedder: Embedder, torch_embedder: Embedder
) -> None:
    qs = sample_questions()
    tops = {}
    for emb in (torch_embedder, embedder):
        index = tmp_path / emb.backend
        build_index(ROOT / "kb" / "sample", index, embedder=emb, progress=False)
        kb = KnowledgeBase.open(index, embedder=emb)
        tops[emb.backend] = [h[0].article_id for h in await kb.search_many([q["text"] for q in qs], k=1)]
    inscope = [i for i, q in enumerate(qs) if q["expected"]]
    same = sum(tops["torch"][i] == tops["onnx-int8"][i] for i in inscope)
    right = [sum(tops[b][i] == qs[i]["expected"] for i in inscope) for b in ("torch", "onnx-int8")]
    # int8 moves the cosines a little (mean 0.99 to fp32): a near-tie between twin articles
    # (cancel / change an order) may flip; see bench/RESULTS.md for the full-size figures
    assert same >= 0.9 * len(inscope), (same, len(inscope))
    assert right[1] >= right[0] - 2, right


@pytest.mark.slow
def test_a_changed_model_is_exported_again_and_its_index_re_embedded(
    tmp_path: Path, embedder: Embedder
) -> None:
    bundled, _ = model_folder(None)
    copy = tmp_path / "my-model"
    for p in bundled.rglob("*"):
        if p.is_file():
            dst = copy / p.relative_to(bundled)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(p)
    cache = tmp_path / "cache"
    first = Embedder.load(str(copy), cache_dir=cache, progress=None)
    assert first.model_hash == embedder.model_hash  # same files: the session's export is copied
    kb_dir = write_kb(tmp_path / "kb")
    built = build_index(kb_dir, tmp_path / "index", embedder=first, progress=False)

    modules = copy / "modules.json"
    text = modules.read_text()
    modules.unlink()
    modules.write_text(text + "\n")  # same model, different files: a new hash
    second = Embedder.load(str(copy), cache_dir=cache, progress=sys.stderr)
    assert second.model_hash != first.model_hash
    exports = sorted(p.name for p in cache.iterdir())
    assert len(exports) == 2 and all(e.startswith("my-model-") for e in exports), exports
    with pytest.raises(IndexMismatchError, match="model_hash"):
        KnowledgeBase.open(tmp_path / "index", embedder=second)
    again = build_index(kb_dir, tmp_path / "index", embedder=second, progress=False)
    assert again.reused == 0 and again.embedded == built.embedded


def tiny_graph(path: Path) -> np.ndarray:
    """A one-MatMul ONNX graph (x @ W) big enough for the quantiser to touch; returns W."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 32])],
        initializer=[numpy_helper.from_array(w, "W")],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return w


def test_quantisation_leaves_the_working_directory_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime as ort

    from kb_index.onnx_export import quantize_int8

    cwd, out = tmp_path / "cwd", tmp_path / "export"
    cwd.mkdir()
    out.mkdir()
    monkeypatch.chdir(cwd)
    w = tiny_graph(out / "model.fp32.onnx")
    quantize_int8(out / "model.fp32.onnx", out / "model.onnx")
    assert list(cwd.iterdir()) == []
    # nothing beside the two graphs: the private scratch folder is gone too
    assert sorted(p.name for p in out.iterdir()) == ["model.fp32.onnx", "model.onnx"]
    x = np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)
    sess = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    (y,) = sess.run(None, {"x": x})
    np.testing.assert_allclose(y, x @ w, rtol=0.1, atol=0.3)


def test_a_failed_quantisation_says_why_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kb_index.onnx_export import quantize_int8

    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.onnx").write_bytes(b"not a graph")
    with pytest.raises(RuntimeError, match=r"int8 quantisation of broken.onnx failed \(exit 1\)"):
        quantize_int8(tmp_path / "broken.onnx", tmp_path / "model.onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.onnx"]


@pytest.mark.slow
def test_a_real_export_writes_only_its_own_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from kb_index.onnx_export import export

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    bundled, _ = model_folder(None)
    progress = io.StringIO()
    meta = export(bundled, tmp_path / "out", quantize=True, name="all-MiniLM-L6-v2", stream=progress)
    assert list(cwd.iterdir()) == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "meta.json",
        "model.onnx",
        "tokenizer.json",
    ]
    assert meta["quantized"] and meta["export_seconds"] < 60
    lines = progress.getvalue().splitlines()
    assert lines[0].startswith("ONNX export of all-MiniLM-L6-v2 (int8, once per model): loading")
    assert "quantising to int8" in lines[-2] and lines[-1].endswith("s") and "done in" in lines[-1]
