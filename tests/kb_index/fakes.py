"""A deterministic stand-in for the embedding model (hashed bag of words + bigrams), so the
engine's plumbing is tested in milliseconds. Real-model tests use the ``embedder`` fixture."""

from __future__ import annotations

import hashlib
import re
import threading

import numpy as np


class HashEmbedder:
    def __init__(self, dim: int = 128, name: str = "hash-test") -> None:
        self.name = name
        self.dim = dim
        self.calls: list[int] = []  # texts per encode call
        self._lock = threading.Lock()

    def encode(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray:
        with self._lock:
            self.calls.append(len(texts))
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            words = re.findall(r"[a-z0-9]+", t.lower())
            for tok in words + [a + " " + b for a, b in zip(words, words[1:], strict=False)]:
                h = int(hashlib.md5(tok.encode()).hexdigest(), 16)
                out[i, h % self.dim] += 1.0 if (h >> 64) & 1 else -1.0
            n = np.linalg.norm(out[i])
            out[i] = out[i] / n if n else out[i]
            if not n:
                out[i, 0] = 1.0
        return out

    @property
    def embedded(self) -> int:
        return sum(self.calls)
