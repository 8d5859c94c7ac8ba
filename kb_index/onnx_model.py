"""Serving a sentence-transformers model through ONNX Runtime (onnxruntime + tokenizers only).

The export (``onnx_export``, needs torch) runs once per model and backend and is cached under
``cache_dir/<name>-<hash>-<backend>-<recipe>/`` where ``hash`` is a SHA-256 over the model folder's files:
a changed (e.g. re-tuned) model gets a new folder, so a stale export is never served.

    cache_dir/all-MiniLM-L6-v2-1f3a…-onnx-int8-e2-auto98-s70-cc58…/
        model.onnx      the graph (mean pooling + L2 inside)
        tokenizer.json  the model's fast tokenizer
        meta.json       dim, pad token, recipe built, fidelities

The recipe names how the graph is made (``recipe``): ``e1`` is the plain export (fp32, or int8
without smoothing); ``e2-s70-<calibration hash>`` the int8 export after SmoothQuant-style
smoothing (``kb_index.smooth``) at alpha 0.70 with the bundled calibration texts;
``e2-auto98-s70-<hash>`` (the int8 default) smooths only when the plain int8 graph's mean cosine
to fp32 is under 0.98 (all-mpnet-base-v2, not all-MiniLM-L6-v2). An index records the recipe
the graph became (``embed_recipe``), so vectors from another one are re-embedded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TextIO

import numpy as np

BACKENDS = ("onnx-int8", "onnx", "torch")
RECIPE = "e1"  # bump when the export changes (opset, quantisation): older exports are then redone
SMOOTHED_RECIPE = "e2"  # int8 after smoothing; the tag adds alpha and the calibration set's hash
SMOOTH_ALPHA = 0.7
MIN_FIDELITY = 0.98  # mean cosine to fp32 below which an int8 export is smoothed (MiniLM 0.99, mpnet 0.90)
CALIBRATION = Path(__file__).with_name("data") / "calibration.json"
SKIP_FILES = {"desktop.ini", ".gitattributes", "README.md", "switchboard_model_name.txt"}
_fingerprints: dict[tuple[str, tuple[tuple[str, int, int], ...]], str] = {}
_exports: dict[tuple[str, str], Path] = {}  # (fingerprint, folder name) -> a finished export in this process
_export_lock = threading.Lock()


def model_files(folder: Path) -> list[Path]:
    """The files that make up a model (what its hash covers)."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.name not in SKIP_FILES and not p.name.startswith(".")
    )


def fingerprint(folder: Path) -> str:
    """SHA-256 over the model folder's files (paths and contents), memoised per process on
    their sizes and modification times so a restart of a long-lived process costs one stat each."""
    folder = folder.resolve()
    files = model_files(folder)
    stats = tuple((str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    key = (str(folder), stats)
    if key in _fingerprints:
        return _fingerprints[key]
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(folder)).encode() + b"\0")
        with p.open("rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        h.update(b"\0")
    digest = h.hexdigest()
    _fingerprints[key] = digest
    return digest


def calibration_texts(path: Path = CALIBRATION) -> list[str]:
    """The bundled texts whose activations set the smoothing scales (``kb_index.smooth``)."""
    texts: list[str] = json.loads(path.read_text())["texts"]
    return texts


def recipe(backend: str, *, smooth: bool | None = None) -> str:
    """How an export of ``backend`` is made (``""`` for torch): ``e1`` plain; ``e2-s70-<hash of the
    calibration texts>`` int8 smoothed; for int8 with ``smooth`` None, the rule (smoothed only if
    the plain graph's fidelity is under 0.98): ``e2-auto98-s70-<hash>``. The cache folder is named
    after it; the export's meta.json records which graph it became, and an index records that."""
    if backend == "torch":
        return ""
    if backend != "onnx-int8" or smooth is False:
        return RECIPE
    digest = hashlib.sha256(CALIBRATION.read_bytes()).hexdigest()[:8]
    rule = "" if smooth else f"auto{round(MIN_FIDELITY * 100)}-"
    return f"{SMOOTHED_RECIPE}-{rule}s{round(SMOOTH_ALPHA * 100)}-{digest}"


def built_recipe(folder: Path) -> str:
    """The recipe an export folder was made with (exports from before recipes were recorded: e1)."""
    return str(json.loads((folder / "meta.json").read_text()).get("recipe", RECIPE))


def export_dir(cache_dir: Path, name: str, digest: str, backend: str, *, smooth: bool | None = None) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_.+" else "_" for c in name)
    return cache_dir / f"{safe}-{digest[:16]}-{backend}-{recipe(backend, smooth=smooth)}"


def ensure_export(
    folder: Path,
    cache_dir: Path,
    *,
    name: str,
    backend: str,
    smooth: bool | None = None,
    stream: TextIO | None = sys.stderr,
) -> Path:
    """The export folder for ``folder`` under ``cache_dir``, exporting it first if needed.
    ``smooth`` (int8 only): True or False forces it, None applies the rule (``recipe``)."""
    if backend not in ("onnx-int8", "onnx"):
        raise ValueError(f"not an ONNX backend: {backend!r} (one of {', '.join(BACKENDS)})")
    smooth = smooth if backend == "onnx-int8" else False
    digest = fingerprint(folder)
    out = export_dir(cache_dir, name, digest, backend, smooth=smooth)
    key = (digest, out.name)
    with _export_lock:
        if (out / "meta.json").is_file():
            _exports[key] = out
            return out
        from kb_index.onnx_export import copy_export, export  # noqa: PLC0415 cycle: onnx_export imports this module's recipe constants

        cache_dir.mkdir(parents=True, exist_ok=True)
        done = _exports.get(key)
        if done is not None and (done / "meta.json").is_file():
            copy_export(done, out)  # exported earlier in this process into another cache
        else:
            tmp = out.with_name(f"{out.name}.tmp{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            export(folder, tmp, quantize=backend == "onnx-int8", name=name, smooth=smooth, stream=stream)
            shutil.rmtree(out, ignore_errors=True)
            tmp.replace(out)
        _exports[key] = out
        return out


class OrtEncoder:
    """Embeds with an exported graph: tokenise (padding to the longest text of each batch,
    truncating at the model's max_seq_length), run, return L2-normalised float32 rows.

    The int8 graph runs one text per call: dynamic quantisation scales the activations over
    the whole input tensor, so in a batch a text's vector would depend on its neighbours (cosine
    to its lone vector down to 0.98) — and one at a time is within 1.5x of the best batch size's
    throughput on this graph (379 vs 589 rows/s, one thread). The fp32 graph batches."""

    def __init__(self, folder: Path, *, threads: int = 1) -> None:
        import onnxruntime as ort  # noqa: PLC0415 heavy: onnxruntime, only when an ONNX backend serves
        from tokenizers import Tokenizer  # noqa: PLC0415 only when an ONNX backend serves

        self.meta: dict[str, Any] = json.loads((folder / "meta.json").read_text())
        self.dim = int(self.meta["dim"])
        self.max_batch = 1 if self.meta.get("quantized") else 64
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tok.enable_truncation(max_length=int(self.meta["max_seq_length"]))
        tok.enable_padding(pad_id=int(self.meta["pad_id"]), pad_token=str(self.meta["pad_token"]))
        self._tok = tok
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads)
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # a shared machine
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(
            str(folder / "model.onnx"), sess_options=opts, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths pad less
        batch_size = max(1, min(batch_size, self.max_batch))
        parts = [order[s : s + batch_size] for s in range(0, len(order), batch_size)]
        if len(parts) >= 2 and PARALLEL > 1:
            # texts one at a time (int8): the calls run side by side on the machine's cores
            # (ONNX Runtime releases the GIL); each text's vector is the same as alone
            list(_pool().map(lambda part: self._run(part, texts, out), parts))
        else:
            for part in parts:
                self._run(part, texts, out)
        return out

    def _run(self, part: list[int], texts: list[str], out: np.ndarray) -> None:
        enc = self._tok.encode_batch([texts[i] for i in part])
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        (vecs,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
        out[part] = vecs


PARALLEL = min(4, os.cpu_count() or 1)  # concurrent session calls for a many-part encode
_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _export_lock:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="ort-encode")
        return _POOL
