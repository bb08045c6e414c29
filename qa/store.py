"""The on-disk index: generations that are written aside and switched to atomically.

Layout of ``index/``::

    CURRENT                 name of the live generation, replaced atomically
    gen-000007/             one complete, immutable index
        manifest.json       format, build settings, models, counts, vector index types
        store.sqlite        documents (text, sha256), chunks (text + offsets), FTS5 lexical index
        dense.faiss         chunk vectors, ids = chunk ids (see "Vector indexes" below)
        multilingual.faiss  cross-lingual chunk vectors (when enabled)
    .staging-*/             a build in progress; never read; removed by the next build
    .lock                   held by the one running build

A build copies the live generation into a staging folder, applies the changes there, fsyncs,
renames it to the next generation and only then points CURRENT at it. A crash at any moment
leaves CURRENT naming a whole generation, so readers never see a half-written index; a
reader notices a new CURRENT and reopens (``Index.is_stale``).

Vector indexes follow the corpus size. Below ``EXACT_SEARCH_MAX`` chunks they are exact
(``IndexIDMap2`` over ``IndexFlatIP``); from there on they are ``IndexIVFScalarQuantizer``
(8-bit codes, inner product, a hashtable direct map so that ``reconstruct(chunk_id)`` and
``remove_ids`` work): a quarter of the memory and a few milliseconds a search at a million
chunks, with recall@10 >= 0.95 against exact search (benchmarks/RESULTS.md). Incremental
builds add to and remove from the IVF index in place, and retrain it when the corpus has
grown four-fold since it was trained.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import faiss
import numpy as np

from qa.chunking import CHUNKER_VERSION, chunk_document
from qa.config import MULTILINGUAL_MODEL, Settings
from qa.embed import Encoder, shared_encoder
from qa.errors import IndexBusyError, IndexCorruptError, IndexMismatchError, IndexNotFoundError
from qa.ingest import CorpusFile, iter_documents, scan_corpus
from qa.records import BuildReport, Chunk, Document, SkippedFile

FORMAT_VERSION = 2  # 2: per-document hashes live in the chunk store, not the manifest
READABLE_FORMATS = (1, 2)
CURRENT = "CURRENT"
_GENERATION = re.compile(r"^gen-(\d{6,})$")

# (stage, done, total): stages are "scan", "read", "embed", "embed-multilingual", "write".
BuildProgress = Callable[[str, int, int], None]

# Exact search up to this many chunks; an IVF index from here on. One exact search of 384-d
# float32 vectors costs about 0.08 ms per thousand chunks on one core (8 ms at 100,000,
# 71 ms at a million); the IVF index answers in 3.3 ms at a million with recall@10 0.97
# (benchmarks/RESULTS.md, "Vector search").
EXACT_SEARCH_MAX = 200_000

# Postings one lexical search may score in full. FTS5 scores every chunk that holds any
# query word; at a million chunks a question's common words match a third of them (p50
# 360 ms). Past this budget the common words only rescore chunks that hold a rare one
# (``Index.search_lexical``; benchmarks/RESULTS.md, "Lexical search at scale").
LEXICAL_POSTINGS_BUDGET = 20_000
_TERM_CACHE_SIZE = 50_000

_SCHEMA = """
CREATE TABLE documents (
    source TEXT PRIMARY KEY, sha256 TEXT NOT NULL, title TEXT NOT NULL, date TEXT,
    text TEXT NOT NULL);
CREATE TABLE chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, ordinal INTEGER NOT NULL,
    start INTEGER NOT NULL, end INTEGER NOT NULL, text TEXT NOT NULL);
CREATE INDEX chunks_by_source ON chunks(source, ordinal);
CREATE VIRTUAL TABLE chunks_fts USING fts5(
    title, text, content='', tokenize='porter unicode61 remove_diacritics 2');
"""


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as read back from the store, with its document's title and date."""

    id: int
    chunk: Chunk
    title: str
    date: str | None


@dataclass(frozen=True)
class DocumentInfo:
    source: str
    title: str
    date: str | None
    chunks: int


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_current(index_dir: Path) -> Path | None:
    try:
        name = (index_dir / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    if not _GENERATION.match(name):
        raise IndexCorruptError(
            f"'{index_dir / CURRENT}' is damaged. Run 'qa build --full' to rebuild the index."
        )
    return index_dir / name


class Index:
    """A read-only view of one generation. Cheap to search from many threads."""

    def __init__(self, generation: Path) -> None:
        self.path = generation
        self.index_dir = generation.parent
        self.manifest = self._read_manifest()
        self.dense = self._read_vectors("dense.faiss")
        self.multilingual = (
            self._read_vectors("multilingual.faiss") if self.manifest["multilingual"] else None
        )
        if not (self.path / "store.sqlite").is_file():
            self._corrupt("its chunk store is missing")
        self._local = threading.local()
        self._postings_cache: dict[str, int] = {}
        self._documents: list[DocumentInfo] | None = None
        self._documents_lock = threading.Lock()
        total = self._db().execute("SELECT count(*) FROM chunks").fetchone()[0]
        if total != self.manifest["chunks"]:
            self._corrupt(f"the chunk store holds {total} chunks, the manifest {self.manifest['chunks']}")

    def _corrupt(self, why: str) -> NoReturn:
        raise IndexCorruptError(
            f"The index at '{self.index_dir}' is damaged: {why}. Run 'qa build --full' to rebuild it."
        )

    def _read_manifest(self) -> dict[str, Any]:
        try:
            manifest = json.loads((self.path / "manifest.json").read_text())
            manifest["settings"], manifest["documents"], manifest["chunks"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self._corrupt(f"its manifest cannot be read ({exc.__class__.__name__})")
        if manifest.get("format") not in READABLE_FORMATS:
            raise IndexMismatchError(
                f"The index at '{self.index_dir}' has format {manifest.get('format')}, this "
                f"version of qa reads formats {', '.join(map(str, READABLE_FORMATS))}. "
                "Run 'qa build --full'."
            )
        return manifest

    def _read_vectors(self, name: str) -> faiss.Index:
        try:
            # Memory-mapped, read-only: opening costs no read of the vectors, and their pages
            # are file cache shared by every process with the index open (a generation never
            # changes once published).
            vectors = faiss.read_index(str(self.path / name), _MMAP_READ_ONLY)
        except RuntimeError:
            self._corrupt(f"'{name}' is missing or truncated")
        if vectors.ntotal != self.manifest["chunks"]:
            self._corrupt(f"'{name}' holds {vectors.ntotal} vectors, the manifest {self.manifest['chunks']}")
        return vectors

    def _db(self) -> sqlite3.Connection:
        # One connection per thread; the file never changes, so it is opened immutable.
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            uri = f"file:{self.path / 'store.sqlite'}?mode=ro&immutable=1"
            try:
                db = sqlite3.connect(uri, uri=True, check_same_thread=False)
                db.execute("SELECT 1 FROM chunks LIMIT 1")
            except sqlite3.DatabaseError as exc:
                self._corrupt(f"its chunk store cannot be read ({exc})")
            self._local.db = db
        return db

    # --- facts about the index ---

    @property
    def settings(self) -> dict[str, object]:
        return dict(self.manifest["settings"])

    @property
    def corpus_dir(self) -> Path:
        """The corpus folder this index was last built from."""
        return Path(self.manifest["corpus"])

    @property
    def built_at(self) -> str:
        return str(self.manifest["created"])

    @property
    def chunk_count(self) -> int:
        return int(self.manifest["chunks"])

    @property
    def document_hashes(self) -> dict[str, str]:
        """sha256 of every indexed document, by source (read from the chunk store)."""
        return dict(self._db().execute("SELECT source, sha256 FROM documents"))

    @property
    def vector_index_type(self) -> str:
        """``"flat"`` (exact search) or ``"ivf-sq8"`` (approximate, for large corpora)."""
        return _index_type(self.dense)

    def check_settings(self, settings: Settings) -> None:
        """Raise ``IndexMismatchError`` unless the index was built with these settings."""
        built = self.settings
        wanted = settings.build_signature()
        if built != wanted:
            differences = ", ".join(
                f"{key} {built.get(key)!r} (now {wanted.get(key)!r})"
                for key in sorted(set(built) | set(wanted))
                if built.get(key) != wanted.get(key)
            )
            raise IndexMismatchError(
                f"The index at '{self.index_dir}' was built with different settings: "
                f"{differences}. Run 'qa build --full' to rebuild it."
            )

    def is_stale(self) -> bool:
        """True when a newer generation has been committed since this one was opened."""
        try:
            return _read_current(self.index_dir) != self.path
        except IndexCorruptError:
            return False

    def documents(self) -> list[DocumentInfo]:
        """Every document with its chunk count, by source. Read once per generation (a
        generation never changes): it takes seconds at a million chunks."""
        with self._documents_lock:
            if self._documents is None:
                rows = self._db().execute(
                    "SELECT d.source, d.title, d.date, count(c.id) FROM documents d "
                    "LEFT JOIN chunks c ON c.source = d.source GROUP BY d.source ORDER BY d.source"
                )
                self._documents = [DocumentInfo(*row) for row in rows]
            return list(self._documents)

    def document_text(self, source: str) -> str:
        row = self._db().execute("SELECT text FROM documents WHERE source = ?", (source,)).fetchone()
        if row is None:
            raise KeyError(source)
        return str(row[0])

    # --- search ---

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        return _search(self.dense, vector, k)

    def search_multilingual(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        return [] if self.multilingual is None else _search(self.multilingual, vector, k)

    def dense_scores(self, vector: np.ndarray, ids: list[int], *, multilingual: bool = False) -> np.ndarray:
        """Inner products of ``vector`` with the stored vectors of chunks ``ids``, in order.

        One batched lookup instead of a ``reconstruct`` per chunk. Exact for the flat index;
        for the 8-bit IVF index within about 0.002 of the exact cosine.
        """
        vectors = self.multilingual if multilingual else self.dense
        if vectors is None or not ids:
            return np.zeros(len(ids), dtype=np.float32)
        stored = vectors.reconstruct_batch(np.asarray(ids, dtype=np.int64))
        return np.asarray(stored @ np.asarray(vector, dtype=np.float32), dtype=np.float32)

    def search_lexical(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        """BM25 over chunk text and title; ``terms`` are ORed. Higher score is better.

        On a large index, scoring every chunk that holds a common word is what costs (FTS5
        scores each match). There the search runs as two bounded queries: the rarest terms
        whose postings fit ``LEXICAL_POSTINGS_BUDGET`` alone, and those rare terms AND the
        common ones. A chunk's best score of the two is its BM25 for the whole query (the
        idf of each word is over the whole index either way); only chunks holding none of
        the rare terms are left out.
        """
        if not terms:
            return []
        rare = terms
        if len(terms) > 1 and self.chunk_count > LEXICAL_POSTINGS_BUDGET:
            rare = self._selective_terms(terms)
        common = [term for term in terms if term not in rare]
        matched = " OR ".join(_phrase(term) for term in rare)
        scores = dict(self._bm25(matched, k))
        if common:
            both = f"({matched}) AND ({' OR '.join(_phrase(term) for term in common)})"
            for rowid, score in self._bm25(both, k):
                scores[rowid] = max(score, scores.get(rowid, score))
        return sorted(scores.items(), key=lambda item: -item[1])[:k]

    def _bm25(self, match: str, k: int) -> list[tuple[int, float]]:
        rows = self._db().execute(
            "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
            "ORDER BY bm25(chunks_fts) LIMIT ?",
            (match, k),
        )
        return [(int(rowid), float(score)) for rowid, score in rows]

    def _selective_terms(self, terms: list[str]) -> list[str]:
        """The rarest ``terms`` whose postings add up to the budget, in their given order."""
        counted = sorted((self._postings(term), n) for n, term in enumerate(terms))
        kept: set[int] = set()
        total = 0
        for postings, n in counted:
            if kept and total + postings > LEXICAL_POSTINGS_BUDGET:
                break
            kept.add(n)
            total += postings
        return [term for n, term in enumerate(terms) if n in kept]

    def _postings(self, term: str) -> int:
        """How many chunks hold ``term``, counted up to just past the budget (cheap: a
        capped count reads at most that many postings)."""
        count = self._postings_cache.get(term)
        if count is None:
            (count,) = (
                self._db()
                .execute(
                    "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)",
                    (_phrase(term), LEXICAL_POSTINGS_BUDGET + 1),
                )
                .fetchone()
            )
            if len(self._postings_cache) >= _TERM_CACHE_SIZE:
                self._postings_cache.clear()
            self._postings_cache[term] = count
        return int(count)

    def chunks(self, ids: list[int]) -> dict[int, StoredChunk]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._db().execute(
            "SELECT c.id, c.source, c.ordinal, c.start, c.end, c.text, d.title, d.date "
            f"FROM chunks c JOIN documents d ON d.source = c.source WHERE c.id IN ({marks})",
            ids,
        )
        return {
            row[0]: StoredChunk(row[0], Chunk(row[1], row[2], row[3], row[4], row[5]), row[6], row[7])
            for row in rows
        }


_MMAP_READ_ONLY = faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY


def _phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _search(vectors: faiss.Index, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
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


# --- vector indexes ---------------------------------------------------------------------


def _index_type(vectors: faiss.Index) -> str:
    return "ivf-sq8" if isinstance(vectors, faiss.IndexIVF) else "flat"


def _ivf_lists(count: int) -> int:
    """IVF list count for ``count`` vectors: about 4·√n, a power of two, and at least 39
    training points per list (k-means needs them)."""
    wanted = 2 ** round(math.log2(max(4 * math.sqrt(count), 1)))
    return int(max(16, min(wanted, 2 ** int(math.log2(max(count // 39, 16))))))


def _ivf_probes(lists: int) -> int:
    """Lists searched per query: 1/16 of them, and at least 32. On real MiniLM embeddings
    recall@10 against exact search was 0.957 at 256 lists / 32 probes, 0.979 at 1,024 / 64
    and 0.970 at 4,096 / 256 (3.3 ms a query at a million chunks; RESULTS.md)."""
    return min(lists, max(32, lists // 16))


def _flat_index(dimension: int) -> faiss.Index:
    return faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))


def _ivf_index(vectors: np.ndarray, ids: np.ndarray) -> faiss.Index:
    """An IVF index with 8-bit scalar-quantised codes, trained on (a sample of) ``vectors``."""
    count, dimension = vectors.shape
    lists = _ivf_lists(count)
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
    index.nprobe = _ivf_probes(lists)
    return index


def _stored_vectors(vectors: Any) -> tuple[np.ndarray, np.ndarray]:
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


def _update_vectors(
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
        vectors = _flat_index(dimension)
    _remove(vectors, remove)
    total = vectors.ntotal + len(ids)
    is_ivf = isinstance(vectors, faiss.IndexIVF)
    want_ivf = total >= exact_max or (is_ivf and total >= exact_max // 2)
    if is_ivf == want_ivf and not (is_ivf and _ivf_lists(total) >= 2 * vectors.nlist):
        if len(ids):
            vectors.add_with_ids(np.ascontiguousarray(embeddings, dtype=np.float32), ids)
        return vectors
    old_ids, old = _stored_vectors(vectors)
    all_ids = np.concatenate([old_ids, ids.astype(np.int64)])
    everything = np.vstack([old, np.asarray(embeddings, dtype=np.float32).reshape(-1, dimension)])
    del vectors, old
    if want_ivf:
        return _ivf_index(everything, all_ids)
    flat = _flat_index(dimension)
    if len(all_ids):
        flat.add_with_ids(everything, all_ids)
    return flat


def open_index(index_dir: str | os.PathLike[str] = "index", *, settings: Settings | None = None) -> Index:
    """Open the live generation; with ``settings``, also check it was built with them."""
    directory = Path(index_dir)
    generation = _read_current(directory)
    if generation is None:
        raise IndexNotFoundError(
            f"No index at '{directory}'. Run 'qa build' to build it from your corpus folder."
        )
    if not generation.is_dir():
        raise IndexCorruptError(
            f"The index at '{directory}' names a missing generation '{generation.name}'. "
            "Run 'qa build --full' to rebuild it."
        )
    index = Index(generation)
    if settings is not None:
        index.check_settings(settings)
    return index


# --- building ---------------------------------------------------------------------------


@contextmanager
def _build_lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexBusyError(
                f"Another 'qa build' is writing the index at '{directory}'. "
                "Wait for it to finish, then run this build again."
            ) from None
        yield


def _embedding_text(title: str, chunk: Chunk) -> str:
    # Later chunks of a document do not repeat its title; prefixing it gives their vectors
    # the document's topic.
    return chunk.text if chunk.text.startswith(title) else f"{title}\n{chunk.text}"


def build_index(
    corpus_dir: str | os.PathLike[str] = "corpus",
    index_dir: str | os.PathLike[str] = "index",
    *,
    settings: Settings | None = None,
    full: bool = False,
    encoder: Encoder | None = None,
    multilingual_encoder: Encoder | None = None,
    progress: BuildProgress | None = None,
    exact_search_max: int | None = None,
) -> BuildReport:
    """Bring the index in line with the corpus, embedding only new and changed documents.

    Vector search is exact up to ``exact_search_max`` chunks (default ``EXACT_SEARCH_MAX``)
    and approximate (IVF) beyond. Raises ``IndexMismatchError`` when the existing index was
    built with other settings (``full=True`` rebuilds from scratch instead) and
    ``IndexBusyError`` when another build holds the index.
    """
    started = time.perf_counter()
    settings = Settings() if settings is None else settings
    encoder = shared_encoder(settings.model) if encoder is None else encoder
    if settings.multilingual and multilingual_encoder is None:
        multilingual_encoder = shared_encoder(MULTILINGUAL_MODEL)
    report = progress if progress is not None else (lambda stage, done, total: None)
    directory = Path(index_dir)

    with _build_lock(directory):
        for stale in directory.glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a build that crashed
        previous = None if full else _open_previous(directory, settings)
        files, skipped = scan_corpus(corpus_dir)
        report("scan", len(files), len(files))
        diff = _diff(files, previous.document_hashes if previous is not None else {})
        added, changed, removed, unchanged = diff.added, diff.changed, diff.removed, diff.unchanged
        current = {f.source: f for f in files}
        if previous is not None and not (added or changed or removed):
            return BuildReport([], [], [], unchanged, skipped, previous.chunk_count, 0,
                               time.perf_counter() - started)  # fmt: skip

        staging = directory / f".staging-{os.getpid()}"
        staging.mkdir()
        writer = _GenerationWriter(
            staging,
            previous,
            settings,
            encoder,
            multilingual_encoder,
            Path(corpus_dir),
            EXACT_SEARCH_MAX if exact_search_max is None else exact_search_max,
        )
        for source in changed + removed:
            writer.remove_document(source)
        to_read = [current[s] for s in added + changed]
        for done, (file, result) in enumerate(iter_documents(to_read), start=1):
            if isinstance(result, Exception):
                skipped.append(SkippedFile(file.source, str(result)))
            else:
                writer.add_document(result)
            report("read", done, len(to_read))
        embedded = writer.embed(report)
        report("write", 0, 1)
        chunk_count = writer.commit()
        _publish(directory, staging)
        report("write", 1, 1)

    skipped_sources = {s.source for s in skipped}
    return BuildReport(
        added=[s for s in added if s not in skipped_sources],
        changed=[s for s in changed if s not in skipped_sources],
        removed=removed + [s for s in changed if s in skipped_sources],
        unchanged=unchanged,
        skipped=skipped,
        chunks=chunk_count,
        embedded_chunks=embedded,
        seconds=time.perf_counter() - started,
    )


@dataclass(frozen=True)
class CorpusChanges:
    """How the corpus differs from an index, by document path."""

    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: list[str]


def _diff(files: list[CorpusFile], indexed: dict[str, str]) -> CorpusChanges:
    current = {f.source: f.sha256 for f in files}
    return CorpusChanges(
        added=sorted(s for s in current if s not in indexed),
        changed=sorted(s for s, h in current.items() if s in indexed and indexed[s] != h),
        removed=sorted(s for s in indexed if s not in current),
        unchanged=sorted(s for s, h in current.items() if indexed.get(s) == h),
    )


def corpus_changes(corpus_dir: str | os.PathLike[str], index: Index) -> CorpusChanges:
    """What a ``build_index`` of ``corpus_dir`` would add, re-embed and remove."""
    files, _ = scan_corpus(corpus_dir)
    return _diff(files, index.document_hashes)


def _open_previous(directory: Path, settings: Settings) -> Index | None:
    try:
        previous = open_index(directory)
    except IndexNotFoundError:
        return None
    previous.check_settings(settings)
    if previous.manifest.get("chunker_version") != CHUNKER_VERSION:
        raise IndexMismatchError(
            f"The index at '{directory}' was chunked by an older version of qa. "
            "Run 'qa build --full' to rebuild it."
        )
    return previous


class _GenerationWriter:
    """Applies one build's changes to a copy of the previous generation in ``staging``."""

    def __init__(
        self,
        staging: Path,
        previous: Index | None,
        settings: Settings,
        encoder: Encoder,
        multilingual_encoder: Encoder | None,
        corpus_dir: Path,
        exact_search_max: int = EXACT_SEARCH_MAX,
    ) -> None:
        self.staging = staging
        self.corpus_dir = corpus_dir
        self.settings = settings
        self.encoder = encoder
        self.multilingual_encoder = multilingual_encoder
        self.exact_search_max = exact_search_max
        if previous is None:
            self.db = sqlite3.connect(staging / "store.sqlite")
            self.db.executescript(_SCHEMA)
            self.dense: faiss.Index | None = None
            self.multilingual: faiss.Index | None = None
        else:
            shutil.copyfile(previous.path / "store.sqlite", staging / "store.sqlite")
            self.db = sqlite3.connect(staging / "store.sqlite")
            # Read into memory, not cloned: the reader's copy is a read-only memory map, and
            # a clone would share it.
            self.dense = faiss.read_index(str(previous.path / "dense.faiss"))
            self.multilingual = (
                None
                if previous.multilingual is None
                else faiss.read_index(str(previous.path / "multilingual.faiss"))
            )
        self.db.execute("PRAGMA journal_mode = OFF")  # staging is thrown away if the build fails
        self.db.execute("PRAGMA synchronous = OFF")  # commit() fsyncs the finished file
        self.removed: list[int] = []  # chunk ids whose vectors go
        self.pending: list[tuple[int, str]] = []  # (chunk id, text to embed)

    def remove_document(self, source: str) -> None:
        (title,) = self.db.execute("SELECT title FROM documents WHERE source = ?", (source,)).fetchone()
        rows = self.db.execute("SELECT id, text FROM chunks WHERE source = ?", (source,)).fetchall()
        for chunk_id, text in rows:
            self.db.execute(
                "INSERT INTO chunks_fts(chunks_fts, rowid, title, text) VALUES('delete', ?, ?, ?)",
                (chunk_id, title, text),
            )
        self.removed.extend(row[0] for row in rows)
        self.db.execute("DELETE FROM chunks WHERE source = ?", (source,))
        self.db.execute("DELETE FROM documents WHERE source = ?", (source,))

    def add_document(self, document: Document) -> None:
        chunks = chunk_document(document, size=self.settings.chunk_size, overlap=self.settings.chunk_overlap)
        self.db.execute(
            "INSERT INTO documents(source, sha256, title, date, text) VALUES (?, ?, ?, ?, ?)",
            (document.source, document.sha256, document.title, document.date, document.text),
        )
        for chunk in chunks:
            cursor = self.db.execute(
                "INSERT INTO chunks(source, ordinal, start, end, text) VALUES (?, ?, ?, ?, ?)",
                (chunk.source, chunk.ordinal, chunk.start, chunk.end, chunk.text),
            )
            chunk_id = int(cursor.lastrowid)  # type: ignore[arg-type]
            self.db.execute(
                "INSERT INTO chunks_fts(rowid, title, text) VALUES (?, ?, ?)",
                (chunk_id, document.title, chunk.text),
            )
            self.pending.append((chunk_id, _embedding_text(document.title, chunk)))

    def embed(self, progress: BuildProgress) -> int:
        """Embed the new chunks and bring both vector indexes up to date."""
        ids = np.array([chunk_id for chunk_id, _ in self.pending], dtype=np.int64)
        texts = [text for _, text in self.pending]
        self.dense = self._update(self.dense, self.encoder, ids, texts, "embed", progress)
        if self.multilingual_encoder is not None:
            self.multilingual = self._update(
                self.multilingual, self.multilingual_encoder, ids, texts, "embed-multilingual", progress
            )
        return len(texts)

    def _update(
        self,
        vectors: faiss.Index | None,
        encoder: Encoder,
        ids: np.ndarray,
        texts: list[str],
        stage: str,
        progress: BuildProgress,
    ) -> faiss.Index:
        if texts:
            progress(stage, 0, len(texts))  # the bar (and its ETA) starts before the first block
            embeddings = encoder.encode(texts, progress=lambda done, total: progress(stage, done, total))
        else:
            embeddings = np.zeros((0, encoder.dimension), dtype=np.float32)
        removed = np.array(self.removed, dtype=np.int64)
        return _update_vectors(vectors, encoder.dimension, removed, ids, embeddings, self.exact_search_max)

    def commit(self) -> int:
        """Write and fsync everything in staging; return the number of chunks."""
        if self.dense is None:  # nothing was ever added (every file skipped)
            self.dense = _flat_index(self.encoder.dimension)
        if self.multilingual is None and self.multilingual_encoder is not None:
            self.multilingual = _flat_index(self.multilingual_encoder.dimension)
        (documents,) = self.db.execute("SELECT count(*) FROM documents").fetchone()
        self.db.commit()
        self.db.close()
        _write_generation_files(
            self.staging,
            settings=self.settings,
            corpus_dir=self.corpus_dir,
            encoder=self.encoder,
            multilingual_encoder=self.multilingual_encoder,
            dense=self.dense,
            multilingual=self.multilingual,
            documents=int(documents),
        )
        return int(self.dense.ntotal)


def _write_generation_files(
    staging: Path,
    *,
    settings: Settings,
    corpus_dir: Path,
    encoder: Encoder,
    multilingual_encoder: Encoder | None,
    dense: faiss.Index,
    multilingual: faiss.Index | None,
    documents: int,
) -> None:
    """Write the vector indexes and the manifest next to a finished ``store.sqlite``, and
    fsync the lot. (benchmarks/synthetic.py writes large test indexes through this too.)"""
    faiss.write_index(dense, str(staging / "dense.faiss"))
    if multilingual is not None:
        faiss.write_index(multilingual, str(staging / "multilingual.faiss"))
    manifest = {
        "format": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "corpus": str(corpus_dir.resolve()),
        "settings": settings.build_signature(),
        "chunker_version": CHUNKER_VERSION,
        "dense": {"model": encoder.name, "dimension": encoder.dimension},
        "multilingual": None
        if multilingual_encoder is None
        else {"model": multilingual_encoder.name, "dimension": multilingual_encoder.dimension},
        "vectors": {
            "dense": _index_type(dense),
            "multilingual": None if multilingual is None else _index_type(multilingual),
        },
        "chunks": int(dense.ntotal),
        "documents": documents,
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
    for path in staging.iterdir():
        _fsync(path)
    _fsync(staging)


def _publish(directory: Path, staging: Path) -> Path:
    """Make ``staging`` the live generation; keep the one before it for open readers."""
    try:
        live = _read_current(directory)
    except IndexCorruptError:
        live = None
    numbers = [int(m.group(1)) for p in directory.iterdir() if (m := _GENERATION.match(p.name))]
    generation = directory / f"gen-{max(numbers, default=0) + 1:06d}"
    staging.rename(generation)
    pointer = directory / f".{CURRENT}.tmp"
    pointer.write_text(generation.name + "\n")
    _fsync(pointer)
    os.replace(pointer, directory / CURRENT)
    _fsync(directory)
    keep = {generation.name, live.name if live is not None else ""}
    for old in directory.glob("gen-*"):
        if old.name not in keep:
            shutil.rmtree(old, ignore_errors=True)
    return generation
