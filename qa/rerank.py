"""A Hit → Hit stage: an optional cross-encoder reranker, loaded from a local folder.

No cross-encoder ships its weights on PyPI (MODELS.md), so none is on by default; a user who
has one on disk sets ``RetrievalOptions.cross_encoder`` (``qa ask --cross-encoder DIR``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from qa.embed import prepare_model_runtime
from qa.errors import ModelNotFoundError
from qa.records import Hit


class CrossEncoderReranker:
    """Scores (question, passage) pairs with a sentence-transformers ``CrossEncoder``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._model: Any = None
        self._lock = threading.Lock()

    def scores(self, question: str, passages: Sequence[str]) -> np.ndarray:
        with self._lock:
            if self._model is None:
                if not Path(self.path).is_dir():
                    raise ModelNotFoundError(
                        f"Cross-encoder '{self.path}' is not a local folder. Models are never "
                        "downloaded: pass the folder of a saved sentence-transformers CrossEncoder."
                    )
                prepare_model_runtime()
                from sentence_transformers import CrossEncoder

                self._model = CrossEncoder(self.path, device="cpu")
        pairs = [(question, passage) for passage in passages]
        return np.asarray(self._model.predict(pairs, show_progress_bar=False), dtype=np.float32).reshape(-1)


_shared: dict[str, CrossEncoderReranker] = {}
_shared_lock = threading.Lock()


def shared_reranker(path: str) -> CrossEncoderReranker:
    """One loaded cross-encoder per folder per process."""
    with _shared_lock:
        if path not in _shared:
            _shared[path] = CrossEncoderReranker(path)
        return _shared[path]


def cross_encoder_rerank(path: str, question: str, hits: Sequence[Hit], candidates: int) -> list[Hit]:
    """The first ``candidates`` hits reordered by the cross-encoder in ``path``, each with
    its score; the hits after them keep their order and scores."""
    head = list(hits[:candidates])
    if not head:
        return list(hits)
    judged = shared_reranker(path).scores(question, [hit.chunk.text for hit in head])
    rescored = [replace(hit, score=float(score)) for hit, score in zip(head, judged, strict=True)]
    rescored.sort(key=lambda hit: -hit.score)
    return rescored + list(hits[candidates:])
