"""The index on disk: a folder per version under ``index_dir`` and a ``CURRENT`` pointer.

    index_dir/CURRENT        "7"  (replaced atomically: the swap)
    index_dir/onnx/          ONNX exports of the model, one folder per model hash (``onnx_model``)
    index_dir/v7/params.json model name and hash, embedding backend, dimension, version, weights, calibration
    index_dir/v7/index.faiss dense vectors of every row (chunks and phrasings)
    index_dir/v7/chunks.jsonl one row per vector: article, kind, text, passage, hash
    index_dir/v7/articles.jsonl titles, urls and passages (the answers)
    index_dir/v7/passages.npy vectors of the passage rows (to pick the best passage)
    index_dir/v7/head_w.npy, head_b.npy  linear article classifier (optional)
    index_dir/v7/bm25/       bm25s files (json + npy)

No pickle anywhere: numpy files are read with allow_pickle=False.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from kb_index.errors import IndexMismatchError, IndexNotFoundError

FORMAT = 1
FLAT_LIMIT = 100_000  # beyond this many vectors: IVF (approximate) instead of exact flat search


def current_version(index_dir: Path) -> tuple[int, Path] | None:
    """The published version and its folder, or None when nothing is published."""
    pointer = index_dir / "CURRENT"
    if pointer.is_file():
        v = int(pointer.read_text().strip())
        return v, index_dir / f"v{v}"
    if (index_dir / "params.json").is_file():  # a bare index folder (no versions)
        params = json.loads((index_dir / "params.json").read_text())
        return int(params.get("version", 0)), index_dir
    return None


def new_version_dir(index_dir: Path) -> tuple[int, Path]:
    index_dir.mkdir(parents=True, exist_ok=True)
    cur = current_version(index_dir)
    v = (cur[0] if cur else 0) + 1
    while True:
        path = index_dir / f"v{v}"
        try:
            path.mkdir()
            return v, path
        except FileExistsError:
            v += 1


def publish(index_dir: Path, version: int, *, keep: int = 3) -> None:
    """Point CURRENT at ``version`` atomically, then delete all but the newest ``keep`` versions."""
    tmp = index_dir / f".CURRENT.{os.getpid()}"
    tmp.write_text(f"{version}\n")
    os.replace(tmp, index_dir / "CURRENT")
    versions = sorted(
        (
            int(p.name[1:])
            for p in index_dir.iterdir()
            if p.is_dir() and p.name[1:].isdigit() and p.name[0] == "v"
        ),
    )
    older = [v for v in versions if v < version]
    for old in older[: max(0, len(older) - (keep - 1))]:
        shutil.rmtree(index_dir / f"v{old}", ignore_errors=True)


def make_faiss(vectors: np.ndarray) -> Any:
    """Exact inner-product search while small; IVF beyond FLAT_LIMIT vectors."""
    n, d = vectors.shape
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(os.cpu_count() or 1)  # searching may have pinned it to 1
    try:
        return _make_faiss(vectors, n, d)
    finally:
        faiss.omp_set_num_threads(before)


def _make_faiss(vectors: np.ndarray, n: int, d: int) -> Any:
    index: Any
    if n <= FLAT_LIMIT:
        index = faiss.IndexFlatIP(d)
    else:
        nlist = int(np.sqrt(n))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = vectors[rng.choice(n, size=min(n, nlist * 40), replace=False)]
        index.train(sample)
        index.nprobe = nprobe_for(nlist)
    if n:
        index.add(vectors)
    return index


def nprobe_for(nlist: int) -> int:
    return max(8, nlist // 64)


def set_search_params(index: faiss.Index) -> None:
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        return
    ivf.nprobe = nprobe_for(ivf.nlist)


def all_vectors(index: faiss.Index) -> np.ndarray:
    """Every vector of an index (to reuse unchanged rows when re-ingesting)."""
    n = index.ntotal
    if n == 0:
        return np.zeros((0, index.d), dtype=np.float32)
    try:
        ivf = faiss.extract_index_ivf(index)
        ivf.make_direct_map()
    except RuntimeError:
        pass
    out: np.ndarray = index.reconstruct_n(0, n)
    return out


@dataclass
class Files:
    path: Path
    params: dict[str, Any]
    rows: list[dict[str, Any]]
    articles: list[dict[str, Any]]
    index: faiss.Index
    passages: np.ndarray
    head_w: np.ndarray | None
    head_b: np.ndarray | None


def read_params(path: Path) -> dict[str, Any]:
    p = path / "params.json"
    if not p.is_file():
        raise IndexNotFoundError(path)
    params: dict[str, Any] = json.loads(p.read_text())
    return params


def check_model(
    path: Path,
    params: dict[str, Any],
    *,
    name: str,
    dim: int,
    backend: str = "torch",
    model_hash: str = "",
    recipe: str = "",
) -> None:
    """Refuse a version built with another model, dimension, embedding backend, model files or
    export recipe (indexes from before backends were recorded were built with torch; from before
    recipes were recorded, with the plain export ``e1``)."""
    if params.get("model") != name:
        raise IndexMismatchError(path, field="model", expected=name, found=params.get("model"))
    if int(params.get("dim", -1)) != dim:
        raise IndexMismatchError(path, field="dim", expected=dim, found=params.get("dim"))
    built_with = params.get("embed_backend", "torch")
    if built_with != backend:
        raise IndexMismatchError(path, field="embed_backend", expected=backend, found=built_with)
    found_hash = params.get("model_hash", "")
    if model_hash and found_hash and found_hash != model_hash:
        raise IndexMismatchError(path, field="model_hash", expected=model_hash, found=found_hash)
    found_recipe = params.get("embed_recipe", "" if built_with == "torch" else "e1")
    if recipe and found_recipe != recipe:
        raise IndexMismatchError(path, field="embed_recipe", expected=recipe, found=found_recipe)


def read_files(
    path: Path, *, name: str, dim: int, backend: str = "torch", model_hash: str = "", recipe: str = ""
) -> Files:
    """Load one version folder, refusing one built with another model, dimension or backend."""
    params = read_params(path)
    check_model(path, params, name=name, dim=dim, backend=backend, model_hash=model_hash, recipe=recipe)
    rows = [json.loads(line) for line in (path / "chunks.jsonl").read_text().splitlines() if line]
    articles = [json.loads(line) for line in (path / "articles.jsonl").read_text().splitlines() if line]
    index = faiss.read_index(str(path / "index.faiss"))
    if index.d != dim:
        raise IndexMismatchError(path, field="dim", expected=dim, found=index.d)
    set_search_params(index)
    passages = np.load(path / "passages.npy", allow_pickle=False)
    head_w = head_b = None
    if (path / "head_w.npy").is_file():
        head_w = np.load(path / "head_w.npy", allow_pickle=False)
        head_b = np.load(path / "head_b.npy", allow_pickle=False)
    return Files(path, params, rows, articles, index, passages, head_w, head_b)


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
