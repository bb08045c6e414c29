"""Reading the on-disk index: one immutable generation, searched from many threads.

Layout of ``index/``::

    CURRENT                 name of the live generation, replaced atomically
    gen-000007/             one complete, immutable index
        .readers            every open ``Index`` holds a shared lock on it (``pin_generation``)
        manifest.json       format, build settings, models, counts, vector index types
        store.sqlite        documents (text, sha256), chunks (text + offsets), FTS5 lexical index
        dense.faiss         chunk vectors, ids = chunk ids (``qa.store.vectors``)
        multilingual.faiss  cross-lingual chunk vectors (when enabled)
    .staging-*/             a build in progress; never read; removed by the next build
    .lock                   held by the one running build

``qa.store.writer`` writes a generation aside and switches CURRENT to it; a reader notices
a new CURRENT and reopens (``Index.is_stale``). A generation is removed only when no reader,
in any process on any machine sharing the folder, holds its ``.readers`` lock: an ``Index``
that outlives any number of rebuilds can still read, and its generation goes at the first
build after it is closed.
"""

from __future__ import annotations

import bisect
import errno
import fcntl
import json
import math
import os
import re
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, NoReturn

import numpy as np

from qa.config import Settings
from qa.errors import IndexBusyError, IndexCorruptError, IndexMismatchError, IndexNotFoundError
from qa.records import Chunk, Citation, Manifest
from qa.store.vectors import FaissVectors, VectorStore
from qa.text import lexical_terms

# 2: per-document hashes live in the chunk store, not the manifest; 3: a layout table
# (sections, pages, characters before and after cleaning, corpus furniture removed);
# 4: the lexical index holds Hangul as two-syllable pieces (``qa.text.lexical_form``).
FORMAT_VERSION = 4
READABLE_FORMATS = (1, 2, 3, 4)
HANGUL_PIECES_FORMAT = 4  # the first format whose lexical index holds Hangul pieces
CURRENT = "CURRENT"
GENERATION = re.compile(r"^gen-(\d{6,})$")
READERS = ".readers"  # in each generation: the lock its open readers share
# Tries to open the live generation while builds keep retiring it under the reader's feet.
_OPEN_ATTEMPTS = 20

# Postings one lexical search may score in full. FTS5 scores every chunk that holds any
# query word; at a million chunks a question's common words match a third of them (p50
# 360 ms). Past this budget the common words only rescore chunks that hold a rare one
# (``Index.search_lexical``; benchmarks/RESULTS.md, "Lexical search at scale").
LEXICAL_POSTINGS_BUDGET = 20_000
_TERM_CACHE_SIZE = 50_000
_LAYOUT_CACHE_SIZE = 10_000


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as read back from the store, with its document's title and date."""

    id: int
    chunk: Chunk
    title: str
    date: str | None


@dataclass(frozen=True)
class DocumentInfo:
    """An indexed document. ``raw_chars`` (text its reader found) and ``kept_chars`` (text
    kept after cleaning) are None for documents indexed before format 3."""

    source: str
    title: str
    date: str | None
    chunks: int
    raw_chars: int | None = None
    kept_chars: int | None = None

    @property
    def kept_share(self) -> float | None:
        if self.raw_chars is None or self.kept_chars is None:
            return None
        return 1.0 if self.raw_chars <= 0 else min(1.0, self.kept_chars / self.raw_chars)


@dataclass(frozen=True)
class DocumentLayout:
    """Where a document's sections and pages start in its cleaned text."""

    sections: tuple[tuple[int, str], ...] = ()
    pages: tuple[tuple[int, int, bool], ...] = ()

    def section_at(self, offset: int) -> str | None:
        n = bisect.bisect_right([start for start, _ in self.sections], offset)
        return self.sections[n - 1][1] if n else None

    def page_at(self, offset: int) -> tuple[int, bool] | None:
        """(1-based page, whether it was OCR'd) of the text at ``offset``, or None."""
        n = bisect.bisect_right([start for start, _, _ in self.pages], offset)
        return (self.pages[n - 1][1], self.pages[n - 1][2]) if n else None


def read_current(index_dir: Path) -> Path | None:
    """The live generation's folder, or None when no build has finished yet."""
    try:
        name = (index_dir / CURRENT).read_text().strip()
    except FileNotFoundError:
        return None
    if not GENERATION.match(name):
        raise IndexCorruptError(
            f"'{index_dir / CURRENT}' is damaged. Run 'qa build --full' to rebuild the index."
        )
    return index_dir / name


class GenerationRetiredError(IndexCorruptError):
    """The generation was removed by a build between reading CURRENT and opening it: open
    the live one instead (``open_index`` does)."""


def pin_generation(generation: Path) -> IO[bytes] | None:
    """Hold a shared lock on ``generation`` for as long as the returned file stays open, so
    that no build removes it (``qa.store.writer.retire_generations``). Returns None where
    the lock file cannot be created (a generation written by an older qa, on a read-only
    folder): that generation is then kept only while it is live or the one before it.

    Raises ``GenerationRetiredError`` when a build removed (or is removing) the generation.
    """
    pin = generation / READERS
    try:
        # O_CREAT: a generation published by an older qa has no lock file yet.
        descriptor = os.open(pin, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except FileNotFoundError:
        raise GenerationRetiredError(f"'{generation}' was removed") from None
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return None
        raise
    handle = os.fdopen(descriptor, "rb")
    # Blocks only while a build is removing this generation (it holds the lock exclusively).
    fcntl.flock(handle, fcntl.LOCK_SH)
    try:
        same = os.stat(pin).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        same = False
    if not same:  # removed while this reader waited for the lock
        handle.close()
        raise GenerationRetiredError(f"'{generation}' was removed")
    return handle


class Index:
    """A read-only view of one generation. Cheap to search from many threads.

    The generation stays on disk as long as this object lives (see ``pin_generation``).
    """

    def __init__(self, generation: Path) -> None:
        self.path = generation
        self.index_dir = generation.parent
        self._pin = pin_generation(generation)
        self.manifest = self._read_manifest()
        self._vectors: dict[str, VectorStore] = {"dense": self._read_vectors("dense")}
        if self.manifest.multilingual:
            self._vectors["multilingual"] = self._read_vectors("multilingual")
        if not (self.path / "store.sqlite").is_file():
            self._corrupt("its chunk store is missing")
        self._local = threading.local()
        self._postings_cache: dict[str, int] = {}
        self._documents: list[DocumentInfo] | None = None
        self._documents_lock = threading.Lock()
        self._layouts: dict[str, DocumentLayout] = {}
        self._layout_table: bool | None = None
        total = self._db().execute("SELECT count(*) FROM chunks").fetchone()[0]
        if total != self.manifest.chunks:
            self._corrupt(f"the chunk store holds {total} chunks, the manifest {self.manifest.chunks}")

    def _corrupt(self, why: str) -> NoReturn:
        raise IndexCorruptError(
            f"The index at '{self.index_dir}' is damaged: {why}. Run 'qa build --full' to rebuild it."
        )

    def _read_manifest(self) -> Manifest:
        try:
            data = json.loads((self.path / "manifest.json").read_text())
            readable = data.get("format") in READABLE_FORMATS
        except (OSError, ValueError, AttributeError) as exc:
            self._corrupt(f"its manifest cannot be read ({exc.__class__.__name__})")
        if not readable:
            raise IndexMismatchError(
                f"The index at '{self.index_dir}' has format {data.get('format')}, this "
                f"version of qa reads formats {', '.join(map(str, READABLE_FORMATS))}. "
                "Run 'qa build --full'."
            )
        try:
            return Manifest.from_json(data)
        except (ValueError, KeyError, TypeError) as exc:
            self._corrupt(f"its manifest cannot be read ({exc.__class__.__name__})")

    def _read_vectors(self, space: str) -> VectorStore:
        name = f"{space}.faiss"
        try:
            vectors = FaissVectors.open(self.path / name)
        except RuntimeError:
            self._corrupt(f"'{name}' is missing or truncated")
        if vectors.count != self.manifest.chunks:
            self._corrupt(f"'{name}' holds {vectors.count} vectors, the manifest {self.manifest.chunks}")
        return vectors

    def vector_store(self, space: str) -> VectorStore | None:
        """The ``"dense"`` or ``"multilingual"`` vectors (None: the index has no such space)."""
        return self._vectors.get(space)

    @property
    def dense(self) -> Any:
        """The dense vectors' FAISS index, for FAISS-level checks and benchmarks (None
        when another ``VectorStore`` holds them)."""
        return _faiss_index(self._vectors["dense"])

    @property
    def multilingual(self) -> Any:
        """The cross-lingual vectors' FAISS index, or None (see ``dense``)."""
        store = self._vectors.get("multilingual")
        return None if store is None else _faiss_index(store)

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
        """The build settings the index was built with (``Settings.build_signature()``)."""
        return dict(self.manifest.settings)

    @property
    def corpus_dir(self) -> Path:
        """The corpus folder this index was last built from."""
        return Path(self.manifest.corpus)

    @property
    def built_at(self) -> str:
        return self.manifest.created

    @property
    def chunk_count(self) -> int:
        return self.manifest.chunks

    @property
    def document_hashes(self) -> dict[str, str]:
        """sha256 of every indexed document, by source (read from the chunk store)."""
        return dict(self._db().execute("SELECT source, sha256 FROM documents"))

    @property
    def vector_index_type(self) -> str:
        """``"flat"`` (exact search) or ``"ivf-sq8"`` (approximate, for large corpora)."""
        return self._vectors["dense"].kind

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
            return read_current(self.index_dir) != self.path
        except IndexCorruptError:
            return False

    def documents(self) -> list[DocumentInfo]:
        """Every document with its chunk count, by source. Read once per generation (a
        generation never changes): it takes seconds at a million chunks."""
        with self._documents_lock:
            if self._documents is None:
                layout = "l.raw_chars, l.kept_chars" if self._has_layout() else "NULL, NULL"
                joined = "LEFT JOIN layout l ON l.source = d.source " if self._has_layout() else ""
                rows = self._db().execute(
                    f"SELECT d.source, d.title, d.date, count(c.id), {layout} FROM documents d "
                    f"LEFT JOIN chunks c ON c.source = d.source {joined}GROUP BY d.source ORDER BY d.source"
                )
                self._documents = [DocumentInfo(*row) for row in rows]
            return list(self._documents)

    def _has_layout(self) -> bool:
        # Indexes of format 1 and 2 have no layout table.
        if self._layout_table is None:
            row = self._db().execute("SELECT 1 FROM sqlite_master WHERE name = 'layout'").fetchone()
            self._layout_table = row is not None
        return self._layout_table

    def layout(self, source: str) -> DocumentLayout:
        """Where ``source``'s sections and pages start (empty for documents without any)."""
        with self._documents_lock:
            cached = self._layouts.get(source)
        if cached is not None:
            return cached
        row = None
        if self._has_layout():
            row = (
                self._db()
                .execute("SELECT sections, pages FROM layout WHERE source = ?", (source,))
                .fetchone()
            )
        layout = (
            DocumentLayout()
            if row is None
            else DocumentLayout(
                tuple((int(o), str(h)) for o, h in json.loads(row[0])),
                tuple((int(o), int(p), bool(r)) for o, p, r in json.loads(row[1])),
            )
        )
        with self._documents_lock:
            if len(self._layouts) >= _LAYOUT_CACHE_SIZE:
                self._layouts.clear()
            self._layouts[source] = layout
        return layout

    def locate(self, citations: Sequence[Citation]) -> list[Citation]:
        """``citations`` with the page and section each excerpt starts in."""
        located = []
        for citation in citations:
            layout = self.layout(citation.source)
            page = layout.page_at(citation.start)
            located.append(
                replace(
                    citation,
                    page=None if page is None else page[0],
                    ocr=page is not None and page[1],
                    section=layout.section_at(citation.start),
                )
            )
        return located

    def edges(self) -> dict[str, tuple[list[str], list[str]]]:
        """For the build: each document's edge-paragraph keys and those removed as corpus
        furniture. Documents indexed before format 3 are absent."""
        if not self._has_layout():
            return {}
        rows = self._db().execute("SELECT source, edge_keys, furniture FROM layout")
        return {source: (json.loads(keys), json.loads(removed)) for source, keys, removed in rows}

    def document_text(self, source: str) -> str:
        row = self._db().execute("SELECT text FROM documents WHERE source = ?", (source,)).fetchone()
        if row is None:
            raise KeyError(source)
        return str(row[0])

    def document_chunks(self, source: str) -> list[StoredChunk]:
        """The chunks of one document, in order."""
        rows = self._db().execute(
            "SELECT c.id, c.source, c.ordinal, c.start, c.end, c.text, d.title, d.date "
            "FROM chunks c JOIN documents d ON d.source = c.source WHERE c.source = ? ORDER BY c.ordinal",
            (source,),
        )
        return [_stored_chunk(row) for row in rows]

    # --- search ---

    def search_dense(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        return self._vectors["dense"].search(vector, k)

    def search_multilingual(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        store = self._vectors.get("multilingual")
        return [] if store is None else store.search(vector, k)

    def dense_scores(self, vector: np.ndarray, ids: list[int], *, multilingual: bool = False) -> np.ndarray:
        """Inner products of ``vector`` with the stored vectors of chunks ``ids``, in order
        (``VectorStore.scores``): exact for the flat index, within about 0.002 of the exact
        cosine for the 8-bit IVF index."""
        store = self._vectors.get("multilingual" if multilingual else "dense")
        if store is None or not ids:
            return np.zeros(len(ids), dtype=np.float32)
        return store.scores(vector, ids)

    def search_lexical(self, terms: list[str], k: int) -> list[tuple[int, float]]:
        """BM25 over chunk text and title; ``terms`` are ORed. Higher score is better.

        On a large index, scoring every chunk that holds a common word is what costs (FTS5
        scores each match). There the search runs as two bounded queries: the rarest terms
        whose postings fit ``LEXICAL_POSTINGS_BUDGET`` alone, and those rare terms AND the
        common ones. A chunk's best score of the two is its BM25 for the whole query (the
        idf of each word is over the whole index either way); only chunks holding none of
        the rare terms are left out.
        """
        terms = self._lexical_terms(terms)
        if not terms:
            return []
        rare = terms
        if len(terms) > 1 and self.chunk_count > LEXICAL_POSTINGS_BUDGET:
            rare = self.selective_terms(terms)
        common = [term for term in terms if term not in rare]
        matched = " OR ".join(_phrase(term) for term in rare)
        scores = dict(self._bm25(matched, k))
        if common:
            both = f"({matched}) AND ({' OR '.join(_phrase(term) for term in common)})"
            for rowid, score in self._bm25(both, k):
                scores[rowid] = max(score, scores.get(rowid, score))
        return sorted(scores.items(), key=lambda item: -item[1])[:k]

    def lexical_idf(self, terms: list[str]) -> float:
        """The sum of the query terms' BM25 idf (FTS5's formula, over chunks): about the
        score of a chunk of average length that holds every term once, so a hit's BM25
        over it says how much of the query the hit explains. A term no chunk holds (a Korean
        word over English text) is no evidence for or against any chunk and is left out.
        Counts are exact up to ``LEXICAL_POSTINGS_BUDGET``; above it a common word's idf is
        overstated a little."""
        total = max(1, self.chunk_count)
        return sum(
            max(1e-6, math.log((total - postings + 0.5) / (postings + 0.5)))
            for postings in map(self._postings, self._lexical_terms(terms))
            if postings > 0
        )

    def lexical_coverage(self, terms: list[str]) -> float:
        """The share of the query's idf that the index holds, from 0 to 1: the idf of the
        terms some chunk holds over that of all terms, a term no chunk holds counting as
        FTS5's idf of a word in no chunk (the largest). A Korean question over English text
        holds a Latin name or a number at most (near 0); a question in the corpus's
        language nearly all of its words (near 1). 0 when the query has no terms."""
        total = max(1, self.chunk_count)
        held = missing = 0.0
        for postings in map(self._postings, self._lexical_terms(terms)):
            if postings > 0:
                held += max(1e-6, math.log((total - postings + 0.5) / (postings + 0.5)))
            else:
                missing += math.log((total + 0.5) / 0.5)
        return held / (held + missing) if held > 0 else 0.0

    def _lexical_terms(self, terms: list[str]) -> list[str]:
        """``terms`` as this index's lexical index stores words (Hangul in pieces from
        format 4 on; an older index holds whole words until 'qa build' migrates it)."""
        return lexical_terms(terms) if self.manifest.format >= HANGUL_PIECES_FORMAT else terms

    def _bm25(self, match: str, k: int) -> list[tuple[int, float]]:
        rows = self._db().execute(
            "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
            "ORDER BY bm25(chunks_fts) LIMIT ?",
            (match, k),
        )
        return [(int(rowid), float(score)) for rowid, score in rows]

    def selective_terms(self, terms: list[str]) -> list[str]:
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
        return {row[0]: _stored_chunk(row) for row in rows}


def _faiss_index(store: VectorStore) -> Any:
    return store.faiss if isinstance(store, FaissVectors) else None


def _stored_chunk(row: tuple[Any, ...]) -> StoredChunk:
    return StoredChunk(row[0], Chunk(row[1], row[2], row[3], row[4], row[5]), row[6], row[7])


def _phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def open_index(index_dir: str | os.PathLike[str] = "index", *, settings: Settings | None = None) -> Index:
    """Open the live generation; with ``settings``, also check it was built with them.

    A build may commit and remove the generation just read from CURRENT before it is
    opened; the live one is then opened instead."""
    directory = Path(index_dir)
    for _ in range(_OPEN_ATTEMPTS):
        generation = read_current(directory)
        if generation is None:
            raise IndexNotFoundError(
                f"No index at '{directory}'. Run 'qa build' to build it from your corpus folder."
            )
        try:
            index = Index(generation)
        except IndexCorruptError:
            if read_current(directory) != generation:
                continue  # a build moved CURRENT on and retired this one meanwhile
            if not generation.is_dir():
                raise IndexCorruptError(
                    f"The index at '{directory}' names a missing generation '{generation.name}'. "
                    "Run 'qa build --full' to rebuild it."
                ) from None
            raise
        if settings is not None:
            index.check_settings(settings)
        return index
    raise IndexBusyError(
        f"The index at '{directory}' changed {_OPEN_ATTEMPTS} times while it was being opened. "
        "Try again when builds are less frequent."
    )
