"""The vector store: what retrieval needs of one vector space (``VectorStore``), how a build
writes the next generation's (``VectorStoreWriter``), and the default implementation, FAISS
files in the generation folder (``FaissVectors``, ``FaissVectorsWriter``). A distributed
vector database (README, "Scaling out") implements the same two protocols; ``qa.store.Index``
and everything above it (retrieval, answers) do not change.

The FAISS policy: which vector index a corpus of a given size gets, and how a build's
removals and additions are applied to it.

Below ``EXACT_SEARCH_MAX`` chunks the index is exact (``IndexIDMap2`` over
``IndexFlatIP``); from there on it is ``IndexIVFScalarQuantizer`` (8-bit codes, inner
product, a hashtable direct map so that ``reconstruct(chunk_id)`` and ``remove_ids`` work):
a quarter of the memory and a few milliseconds a search at a million chunks, with
recall@10 >= 0.95 against exact search (benchmarks/RESULTS.md). Incremental builds add to
and remove from the IVF index in place, and retrain it when the corpus has grown four-fold
since it was trained. Vectors are L2-normalised, so inner product is cosine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import faiss
import numpy as np

# Exact search up to this many chunks; an IVF index from here on. One exact search of 384-d
# float32 vectors costs about 0.08 ms per thousand chunks on one core (8 ms at 100,000,
# 71 ms at a million); the IVF index answers in 3.3 ms at a million with recall@10 0.97
# (benchmarks/RESULTS.md, "Vector search").
EXACT_SEARCH_MAX = 200_000

# Memory-mapped, read-only: opening costs no read of the vectors, and their pages are file
# cache shared by every process with the index open (a generation never changes once
# published).
MMAP_READ_ONLY = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY


def index_type(vectors: faiss.Index) -> str:
    """``"flat"`` (exact search) or ``"ivf-sq8"`` (approximate, for large corpora)."""
    return "ivf-sq8" if isinstance(vectors, faiss.IndexIVF) else "flat"


def search(vectors: faiss.Index, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
    """The ``k`` best (id, inner product) pairs for one query vector, best first."""
    if vectors.ntotal == 0:
        return []
    # One query on one OpenMP thread: two threads made a 100k-chunk exact search 6x slower
    # (11 ms vs 67 ms) on a busy 2-core machine. The setting is per calling thread.
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        scores, ids = vectors.search(
            np.asarray(vector, dtype=np.float32).reshape(1, -1), min(k, vectors.ntotal)
        )
    finally:
        faiss.omp_set_num_threads(threads)
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]


def ivf_lists(count: int) -> int:
    """IVF list count for ``count`` vectors: about 4·√n, a power of two, and at least 39
    training points per list (k-means needs them)."""
    wanted = 2 ** round(math.log2(max(4 * math.sqrt(count), 1)))
    return int(max(16, min(wanted, 2 ** int(math.log2(max(count // 39, 16))))))


def ivf_probes(lists: int) -> int:
    """Lists searched per query: 1/16 of them, and at least 32. On real MiniLM embeddings
    recall@10 against exact search was 0.957 at 256 lists / 32 probes, 0.979 at 1,024 / 64
    and 0.970 at 4,096 / 256 (3.3 ms a query at a million chunks; RESULTS.md)."""
    return min(lists, max(32, lists // 16))


def flat_index(dimension: int) -> faiss.Index:
    """An empty exact index whose ids are chunk ids."""
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def ivf_index(vectors: np.ndarray, ids: np.ndarray) -> faiss.Index:
    """An IVF index with 8-bit scalar-quantised codes, trained on (a sample of) ``vectors``."""
    count, dimension = vectors.shape
    lists = ivf_lists(count)
    index = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dimension),
        dimension,
        lists,
        faiss.ScalarQuantizer.QT_8bit,
        faiss.METRIC_INNER_PRODUCT,
    )
    index.cp.niter = 12  # k-means iterations (faiss default 25): halves the training time
    sample = min(count, 32 * lists)  # k-means wants 30 to 256 points per list
    index.cp.min_points_per_centroid = 30  # faiss warns below 39; recall is in RESULTS.md
    chosen = np.sort(np.random.default_rng(0).choice(count, size=sample, replace=False))
    index.train(np.ascontiguousarray(vectors[chosen]))
    index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]  # reconstruct(id), remove_ids
    index.add_with_ids(vectors, ids)
    index.nprobe = ivf_probes(lists)
    return index


def stored_vectors(vectors: Any) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) of everything in ``vectors``; 8-bit codes come back decoded."""
    if isinstance(vectors, faiss.IndexIVF):
        lists: Any = vectors.invlists
        ids = np.concatenate(
            [np.zeros(0, dtype=np.int64)]
            + [
                faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                for i in range(vectors.nlist)
                if lists.list_size(i)
            ]
        )
        if not len(ids):
            return ids, np.zeros((0, vectors.d), dtype=np.float32)
        return ids, vectors.reconstruct_batch(ids)
    ids = faiss.vector_to_array(vectors.id_map).astype(np.int64)
    inner = faiss.downcast_index(vectors.index)
    return ids, inner.reconstruct_n(0, inner.ntotal) if len(ids) else np.zeros((0, vectors.d), np.float32)


def _remove(vectors: faiss.Index, ids: np.ndarray) -> None:
    if not len(ids):
        return
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    # The hashtable direct map removes only by an explicit array of ids.
    selector = faiss.IDSelectorArray(len(ids), faiss.swig_ptr(ids))
    vectors.remove_ids(selector)


def update_vectors(
    vectors: Any,
    dimension: int,
    remove: np.ndarray,
    ids: np.ndarray,
    embeddings: np.ndarray,
    exact_max: int,
) -> faiss.Index:
    """Apply one build's removals and additions, choosing the index type for the new size.

    Flat below ``exact_max`` chunks and IVF from there on; an IVF index stays IVF down to
    half that (no flapping at the boundary) and is retrained once the corpus has grown so
    that it would get twice as many lists: its clusters were fitted to a smaller corpus.
    """
    if vectors is None:
        vectors = flat_index(dimension)
    _remove(vectors, remove)
    total = vectors.ntotal + len(ids)
    is_ivf = isinstance(vectors, faiss.IndexIVF)
    want_ivf = total >= exact_max or (is_ivf and total >= exact_max // 2)
    if is_ivf == want_ivf and not (is_ivf and ivf_lists(total) >= 2 * vectors.nlist):
        if len(ids):
            vectors.add_with_ids(np.ascontiguousarray(embeddings, dtype=np.float32), ids)
        return vectors
    old_ids, old = stored_vectors(vectors)
    all_ids = np.concatenate([old_ids, ids.astype(np.int64)])
    everything = np.vstack([old, np.asarray(embeddings, dtype=np.float32).reshape(-1, dimension)])
    del vectors, old
    if want_ivf:
        return ivf_index(everything, all_ids)
    flat = flat_index(dimension)
    if len(all_ids):
        flat.add_with_ids(everything, all_ids)
    return flat


class VectorStore(Protocol):
    """One vector space of one generation: L2-normalised chunk vectors under their chunk
    ids, read-only. ``kind`` names the index (``"flat"``, ``"ivf-sq8"``) for the manifest
    and ``qa info``."""

    @property
    def kind(self) -> str: ...

    @property
    def count(self) -> int: ...

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """The ``k`` best (chunk id, inner product) pairs, best first."""
        ...

    def scores(self, vector: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        """Inner products of ``vector`` with the stored vectors of ``ids``, in order."""
        ...


class VectorStoreWriter(Protocol):
    """The next generation's vectors of one space, started from the previous generation's."""

    def update(self, remove: np.ndarray, ids: np.ndarray, embeddings: np.ndarray) -> None:
        """Drop the vectors of chunk ids ``remove``; add ``embeddings`` under ``ids``. Once a build."""
        ...

    def save(self) -> VectorStore:
        """Make the vectors durable (fsynced with the generation) and return them."""
        ...


class FaissVectors:
    """The default ``VectorStore``: a FAISS index in a file of the generation folder,
    memory-mapped read-only. ``faiss`` is the index itself, for FAISS-level checks."""

    def __init__(self, index: faiss.Index) -> None:
        self.faiss = index

    @classmethod
    def open(cls, path: Path) -> FaissVectors:
        """Map the index in ``path``; raises ``RuntimeError`` when it is missing or truncated."""
        return cls(faiss.read_index(str(path), MMAP_READ_ONLY))

    @property
    def kind(self) -> str:
        return index_type(self.faiss)

    @property
    def count(self) -> int:
        return int(self.faiss.ntotal)

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        return search(self.faiss, vector, k)

    def scores(self, vector: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        # One batched lookup instead of a ``reconstruct`` per chunk. Exact for the flat
        # index; for the 8-bit IVF index within about 0.002 of the exact cosine.
        if not len(ids):
            return np.zeros(0, dtype=np.float32)
        stored = self.faiss.reconstruct_batch(np.asarray(ids, dtype=np.int64))
        return np.asarray(stored @ np.asarray(vector, dtype=np.float32), dtype=np.float32)


class FaissVectorsWriter:
    """The default ``VectorStoreWriter``: the previous generation's FAISS file read into
    memory (not mapped: a reader maps that file, and it must not change), updated by
    ``update_vectors`` and written to ``path`` in the staging folder."""

    def __init__(self, path: Path, previous: Path | None, dimension: int, *, exact_search_max: int) -> None:
        self.path = path
        self.dimension = dimension
        self.exact_search_max = exact_search_max
        self._vectors: faiss.Index | None = None if previous is None else faiss.read_index(str(previous))

    def update(self, remove: np.ndarray, ids: np.ndarray, embeddings: np.ndarray) -> None:
        self._vectors = update_vectors(
            self._vectors,
            self.dimension,
            np.asarray(remove, dtype=np.int64),
            np.asarray(ids, dtype=np.int64),
            embeddings,
            self.exact_search_max,
        )

    def save(self) -> FaissVectors:
        if self._vectors is None:  # nothing was ever stored in this space
            self._vectors = flat_index(self.dimension)
        faiss.write_index(self._vectors, str(self.path))  # fsynced with the generation (writer.commit)
        return FaissVectors(self._vectors)
