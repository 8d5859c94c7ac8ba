"""Smoothing before int8 quantisation (kb_index/smooth.py): an identity in fp32, closer to fp32
after quantisation, part of the export's cache key and of what an index records."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from kb_index import Embedder, IndexMismatchError, KnowledgeBase, build_index, onnx_model
from kb_index.onnx_export import quantize_int8
from kb_index.onnx_model import calibration_texts, export_dir, recipe
from kb_index.smooth import SmoothedLinear, record_ranges, rescale, smooth

from .fakes import HashEmbedder
from .test_index import write_kb
from .test_onnx import sample_questions

ROOT = Path(__file__).resolve().parents[2]
MPNET = ROOT / "var" / "models" / "all-mpnet-base-v2"


class PostLN(torch.nn.Module):
    """A post-LayerNorm block like MPNet's and BERT's (the LayerNorm's output is both the next
    Linear's input and the residual), with two outlier channels in the LayerNorm's gain."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp = torch.nn.Linear(16, 64)
        self.ln = torch.nn.LayerNorm(64)
        self.fc1 = torch.nn.Linear(64, 128)
        self.fc2 = torch.nn.Linear(128, 64)
        self.ln2 = torch.nn.LayerNorm(64)
        self.out = torch.nn.Linear(64, 32)
        with torch.no_grad():
            self.ln.weight[[3, 17]] = 40.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln(self.inp(x))
        h = self.ln2(h + self.fc2(torch.relu(self.fc1(h))))
        out: torch.Tensor = self.out(h)
        return out


def inputs(seed: int, n: int = 8) -> torch.Tensor:
    return torch.randn(n, 5, 16, generator=torch.Generator().manual_seed(seed))


def smoothed(model: torch.nn.Module) -> torch.nn.Module:
    twin = copy.deepcopy(model)
    calib = inputs(1, 32)
    assert rescale(twin, record_ranges(twin, lambda: twin(calib))) == 4
    return twin


def test_smoothing_is_an_identity_before_quantisation() -> None:
    model = PostLN().eval()
    twin = smoothed(model)
    assert isinstance(twin.fc1, SmoothedLinear) and not isinstance(model.fc1, SmoothedLinear)
    x = inputs(2)  # not the calibration inputs
    with torch.no_grad():
        torch.testing.assert_close(twin(x), model(x), rtol=1e-5, atol=1e-5)
    # the outliers moved into the weights: fc1's input range is now even across channels
    ranges = record_ranges(twin, lambda: twin(inputs(1, 32)))
    fc1_in = ranges["fc1.linear"]
    assert fc1_in.max() / fc1_in.median() < 10
    plain = record_ranges(model, lambda: model(inputs(1, 32)))["fc1"]
    assert plain.max() / plain.median() > 20


def export_int8(model: torch.nn.Module, folder: Path) -> Path:
    folder.mkdir(parents=True)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (inputs(0, 1),),
            str(folder / "fp32.onnx"),
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch", 1: "seq"}, "y": {0: "batch", 1: "seq"}},
            opset_version=17,
            dynamo=False,
        )
    quantize_int8(folder / "fp32.onnx", folder / "int8.onnx")
    return folder / "int8.onnx"


def test_smoothing_brings_the_int8_graph_closer_to_fp32(tmp_path: Path) -> None:
    import onnxruntime as ort

    model = PostLN().eval()
    x = inputs(3)
    with torch.no_grad():
        want = model(x).numpy()
    errors = {}
    for name, m in (("plain", model), ("smoothed", smoothed(model))):
        sess = ort.InferenceSession(str(export_int8(m, tmp_path / name)), providers=["CPUExecutionProvider"])
        got = np.concatenate([sess.run(None, {"x": x[i : i + 1].numpy()})[0] for i in range(len(x))])
        errors[name] = float(np.abs(got - want).mean() / np.abs(want).mean())
    assert errors["smoothed"] < 0.5 * errors["plain"], errors


def test_the_smoothing_is_part_of_the_cache_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def folder(backend: str = "onnx-int8", smooth: bool | None = None) -> str:
        return export_dir(tmp_path, "m", "ab" * 32, backend, smooth=smooth).name

    default = folder()
    assert "-onnx-int8-e2-auto98-s70-" in default  # the rule: smoothed if the plain graph is poor
    assert "-onnx-int8-e2-s70-" in folder(smooth=True)
    assert folder(smooth=False).endswith("-onnx-int8-e1")
    # fp32 is never smoothed (it would change nothing): its folder stays where it was
    assert folder("onnx").endswith("-onnx-e1") and folder("onnx", True).endswith("-onnx-e1")
    assert recipe("torch") == ""
    # other calibration texts, another alpha or another fidelity bar: another export
    calib = tmp_path / "calibration.json"
    calib.write_text(json.dumps({"texts": [*calibration_texts(), "one more"]}))
    monkeypatch.setattr(onnx_model, "CALIBRATION", calib)
    assert folder() != default
    monkeypatch.undo()
    assert folder() == default
    monkeypatch.setattr(onnx_model, "SMOOTH_ALPHA", 0.5)
    assert "-e2-auto98-s50-" in folder()
    monkeypatch.setattr(onnx_model, "MIN_FIDELITY", 0.995)
    assert "-e2-auto100-s50-" in folder()


def test_an_index_from_the_plain_int8_export_is_re_embedded(tmp_path: Path) -> None:
    kb_dir = write_kb(tmp_path / "kb")
    old = HashEmbedder()
    old.backend = "onnx-int8"  # type: ignore[attr-defined]
    first = build_index(kb_dir, tmp_path / "index", embedder=old, progress=False)  # type: ignore[arg-type]
    params = next((tmp_path / "index").glob("v*/params.json"))
    p = json.loads(params.read_text())
    del p["embed_recipe"]  # as written before recipes were recorded: the plain export
    params.write_text(json.dumps(p))
    new = HashEmbedder()
    new.backend = "onnx-int8"  # type: ignore[attr-defined]
    new.recipe = recipe("onnx-int8", smooth=True)  # type: ignore[attr-defined]
    with pytest.raises(IndexMismatchError, match="embed_recipe"):
        KnowledgeBase.open(tmp_path / "index", embedder=new)  # type: ignore[arg-type]
    old.recipe = "e1"  # type: ignore[attr-defined]
    KnowledgeBase.open(tmp_path / "index", embedder=old)  # type: ignore[arg-type]
    again = build_index(kb_dir, tmp_path / "index", embedder=new, progress=False)  # type: ignore[arg-type]
    assert again.reused == 0 and again.embedded == first.embedded
    kb = KnowledgeBase.open(tmp_path / "index", embedder=new)  # type: ignore[arg-type]
    assert kb.params["embed_recipe"] == recipe("onnx-int8", smooth=True)


def assert_identity(model: object, texts: list[str]) -> None:
    reference: np.ndarray = model.encode(texts, normalize_embeddings=True)  # type: ignore[attr-defined]
    twin = copy.deepcopy(model)
    n = smooth(twin, calibration_texts()[:24])
    assert n > 0
    got: np.ndarray = twin.encode(texts, normalize_embeddings=True)  # type: ignore[attr-defined]
    np.testing.assert_allclose(got, reference, atol=2e-5)


@pytest.mark.slow
def test_smoothing_keeps_the_real_models_fp32_outputs(torch_embedder: Embedder) -> None:
    assert_identity(torch_embedder._model, [q["text"] for q in sample_questions()])


@pytest.mark.slow
@pytest.mark.skipif(not (MPNET / "model.safetensors").is_file(), reason="make model-mpnet")
def test_smoothing_keeps_mpnets_fp32_outputs() -> None:
    mpnet = Embedder.load(str(MPNET), backend="torch")
    assert_identity(mpnet._model, [q["text"] for q in sample_questions()][:12])


@pytest.mark.slow
def test_the_smoothed_int8_export_is_closer_to_fp32(
    tmp_path: Path, embedder: Embedder, torch_embedder: Embedder
) -> None:
    # the rule keeps MiniLM's plain graph (its fidelity clears the bar), so smoothing is forced here
    assert embedder.recipe == "e1"
    check = embedder._model.meta["smoothing"]  # type: ignore[attr-defined]
    assert check["applied"] is False and check["plain_fidelity"] >= 0.98
    smoothed = Embedder.load(cache_dir=tmp_path, smooth=True, progress=None)
    assert smoothed.recipe == recipe("onnx-int8", smooth=True) != "e1"
    texts = [q["text"] for q in sample_questions()]
    ref = torch_embedder.encode(texts)
    gap = {name: 1 - (e.encode(texts) * ref).sum(1) for name, e in (("plain", embedder), ("smoothed", smoothed))}
    # all-MiniLM-L6-v2 on 300 Banking77 queries: mean cosine 0.9938 plain, 0.9976 smoothed
    assert gap["smoothed"].mean() < 0.75 * gap["plain"].mean(), {k: v.mean() for k, v in gap.items()}
