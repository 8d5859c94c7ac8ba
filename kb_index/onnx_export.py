"""Exporting a sentence-transformers folder to ONNX (fp32), optionally quantised to int8.

This is the only ONNX code that needs torch: for int8, first the SmoothQuant-style rescaling of
every Linear (``kb_index.smooth``, which moves activation outlier channels into the weights), then
``torch.onnx.export`` of the whole sentence-transformers pipeline (transformer, pooling, any dense
layers) followed by an L2 normalisation, then ``onnxruntime.quantization.quantize_dynamic`` (int8
weights with per-channel scales, activations quantised on the fly). Serving the result
(``onnx_model``) needs only onnxruntime + tokenizers.

(sentence-transformers' own ``backend="onnx"`` goes through optimum, whose releases pin
transformers < 5; see docs/kb.md.)
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from kb_index.onnx_model import MIN_FIDELITY, SMOOTH_ALPHA, calibration_texts, recipe

OPSET = 17
CHECK_TEXTS = 60  # calibration texts the int8 graph is checked on (for the smoothing rule)


def export(
    folder: Path,
    out_dir: Path,
    *,
    quantize: bool,
    name: str,
    smooth: bool | None = None,
    stream: TextIO | None = sys.stderr,
) -> dict[str, Any]:
    """Write ``out_dir/model.onnx`` (int8 when ``quantize``), ``tokenizer.json`` and ``meta.json``
    for the model in ``folder``; returns the meta. For int8, ``smooth`` rescales the Linear layers
    first (``kb_index.smooth``); None applies the rule: quantise plainly, and smooth and quantise
    again only if the plain graph's mean cosine to fp32 on the calibration texts is below
    ``MIN_FIDELITY``. ``stream`` gets one progress line per step."""
    t0 = time.perf_counter()

    def say(step: str) -> None:
        if stream is not None:
            print(
                f"ONNX export of {name} ({'int8' if quantize else 'fp32'}, once per model): {step}",
                file=stream,
            )
            stream.flush()

    say("loading the PyTorch model…")
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415 heavy: torch, export only

    st: Any = SentenceTransformer(str(folder), device="cpu")
    st.eval()
    first = st[0]
    tokenizer = getattr(first, "tokenizer", None)
    if tokenizer is None or not getattr(tokenizer, "is_fast", False):
        raise ValueError(f"{folder}: ONNX serving needs a fast tokenizer (tokenizer.json)")
    max_len = int(getattr(st, "max_seq_length", None) or 256)
    get_dim = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    dim = int(get_dim() or 0)
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32, final = out_dir / "model.fp32.onnx", out_dir / "model.onnx"
    check = calibration_texts()[:: max(1, len(calibration_texts()) // CHECK_TEXTS)]
    reference = st.encode(check, normalize_embeddings=True, convert_to_numpy=True) if quantize else None
    smoothing: dict[str, Any] | None = None
    if not quantize or smooth is not True:
        say("exporting the graph…")
        export_graph(st, tokenizer, fp32)
    if quantize and smooth is not True:
        say("quantising to int8…")
        quantize_int8(fp32, final)
        plain = fidelity(final, tokenizer, check, reference, max_len=max_len)
        smoothing = {"plain_fidelity": plain, "applied": False}
        if smooth is None and plain < MIN_FIDELITY:
            smooth = True
    if quantize and smooth:
        from kb_index.smooth import smooth as smooth_linears  # noqa: PLC0415 heavy: torch, like the export itself

        say("smoothing activation outliers (calibration texts)…")
        linears = smooth_linears(st)
        say("exporting the smoothed graph…")
        export_graph(st, tokenizer, fp32)
        say("quantising to int8…")
        quantize_int8(fp32, final)
        smoothing = {
            **(smoothing or {}),
            "applied": True,
            "alpha": SMOOTH_ALPHA,
            "linears": linears,
            "fidelity": fidelity(final, tokenizer, check, reference, max_len=max_len),
        }
    if quantize:
        fp32.unlink()
    else:
        fp32.replace(final)
    tokenizer.backend_tokenizer.save(str(out_dir / "tokenizer.json"))
    pad = tokenizer.pad_token or "[PAD]"
    meta = {
        "name": name,
        "dim": dim,
        "max_seq_length": max_len,
        "pad_token": pad,
        "pad_id": int(tokenizer.pad_token_id or 0),
        "quantized": quantize,
        "smoothing": smoothing,
        # what the graph is (an index records it): plain, or smoothed
        "recipe": recipe("onnx-int8" if quantize else "onnx", smooth=bool(smooth)),
        "opset": OPSET,
        "export_seconds": round(time.perf_counter() - t0, 2),
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    say(f"done in {meta['export_seconds']:.1f}s")
    return meta


def export_graph(st: Any, tokenizer: Any, path: Path) -> None:
    """``torch.onnx.export`` of the whole pipeline, L2 normalisation included."""
    import torch  # noqa: PLC0415 heavy: torch, export only

    class Pipeline(torch.nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            out = self.model({"input_ids": input_ids, "attention_mask": attention_mask})
            return torch.nn.functional.normalize(out["sentence_embedding"], dim=-1)

    sample = tokenizer(["a sample query to trace", "and a second one"], padding=True, return_tensors="pt")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about shape-dependent Python branches
        torch.onnx.export(
            Pipeline(st),
            (sample["input_ids"], sample["attention_mask"]),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "embedding": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )


def fidelity(graph: Path, tokenizer: Any, texts: list[str], reference: Any, *, max_len: int) -> float:
    """Mean cosine between ``graph``'s embeddings of ``texts`` (one at a time, as served) and
    ``reference`` (the PyTorch fp32 ones, normalised)."""
    import onnxruntime as ort  # noqa: PLC0415 heavy: onnxruntime, only when an ONNX backend is used

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(graph), sess_options=opts, providers=["CPUExecutionProvider"])
    cos = []
    for t, ref in zip(texts, reference, strict=True):
        enc = tokenizer([t], return_tensors="np", truncation=True, max_length=max_len)
        ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
        (vec,) = sess.run(None, {"input_ids": ids, "attention_mask": mask})
        cos.append(float(vec[0] @ ref))
    return round(float(np.mean(cos)), 4)


def quantize_int8(src: Path, dst: Path, *, timeout: float = 900.0) -> None:
    """Dynamic int8 quantisation of ``src`` into ``dst``, run in a child process whose working
    directory and TMPDIR are a private temporary folder beside ``dst`` (removed afterwards).

    onnxruntime's quantisation tools write scratch files relative to the working directory (its
    symbolic shape inference saves ``sym_shape_infer_temp.onnx`` plus a ``<uuid>.data`` of the
    weights there when it gives up) and under the system temp folder; changing this process's
    working directory would move every other thread's relative paths too, so it runs apart."""
    src, dst = src.resolve(), dst.resolve()
    with tempfile.TemporaryDirectory(prefix=".quant-", dir=dst.parent) as work:
        env = {**os.environ, "TMPDIR": work, "TEMP": work, "TMP": work}
        code = "import sys; from kb_index.onnx_export import _quantize; _quantize(sys.argv[1], sys.argv[2])"
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        done = subprocess.run(
            [sys.executable, "-c", code, str(src), str(dst)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-5:])
            raise RuntimeError(f"int8 quantisation of {src.name} failed (exit {done.returncode}): {tail}")


def _quantize(src: str, dst: str) -> None:
    """The child process's part of :func:`quantize_int8`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415 heavy: onnxruntime's quantiser, export only

    # per-channel weight scales: mean cosine to PyTorch fp32 0.993 on Banking77 queries (0.968 per tensor)
    logging.getLogger().setLevel(logging.ERROR)  # the quantiser logs a pre-processing hint on the root logger
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=True)


def copy_export(src: Path, dst: Path) -> None:
    """Copy a finished export (another cache folder of the same model) into ``dst``."""
    tmp = dst.with_name(dst.name + ".copy")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    shutil.rmtree(dst, ignore_errors=True)
    tmp.replace(dst)
