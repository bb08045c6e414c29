"""Small deterministic stand-ins, for unit tests that are about everything but the model."""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np


class HashingEncoder:
    """Bag of hashed words, L2-normalised: texts sharing words get similar vectors.

    Counts what it embeds, so tests can check that a build re-embeds only what changed.
    """

    name = "test/hashing-64"
    dimension = 64

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def encode(self, texts: Sequence[str], *, progress=None) -> np.ndarray:
        self.embedded.extend(texts)
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, zlib.crc32(word.encode()) % self.dimension] += 1.0
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
        if progress is not None:
            progress(len(texts), len(texts))
        return out
