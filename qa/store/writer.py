"""Writing the on-disk index: a generation staged aside, fsynced, then published.

A build copies the live generation into a staging folder, applies the changes there,
fsyncs, renames it to the next generation and only then points CURRENT at it. A crash at
any moment leaves CURRENT naming a whole generation, so readers never see a half-written
index. The writer stores what it is given (documents with their chunks, vectors by chunk
id); reading, chunking and embedding are the build's (``qa.build``).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from qa.chunking import CHUNKER_VERSION
from qa.config import Settings
from qa.errors import IndexBusyError, IndexCorruptError
from qa.records import Chunk, Document, Manifest, ModelInfo, VectorTypes
from qa.store.reader import (
    CURRENT,
    FORMAT_VERSION,
    GENERATION,
    HANGUL_PIECES_FORMAT,
    READERS,
    Index,
    read_current,
)
from qa.store.vectors import EXACT_SEARCH_MAX, FaissVectorsWriter
from qa.text import lexical_form

SCHEMA = """
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
# Format 3: where each document's sections and pages start in its text, how much text its
# reader found before cleaning, and its edge paragraphs' keys with those removed as corpus
# furniture (JSON lists). An index of an older format gains the table when a build next
# writes it; documents carried over from it have no row until they are read again.
LAYOUT_SCHEMA = """
CREATE TABLE IF NOT EXISTS layout (
    source TEXT PRIMARY KEY, raw_chars INTEGER NOT NULL, kept_chars INTEGER NOT NULL, sections TEXT NOT NULL,
    pages TEXT NOT NULL, edge_keys TEXT NOT NULL, furniture TEXT NOT NULL);
"""
VECTOR_SPACES = ("dense", "multilingual")  # each is stored as <space>.faiss


def fsync(path: Path) -> None:
    """Flush a file's or a folder's contents to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def build_lock(directory: Path) -> Iterator[None]:
    """Hold the index's build lock, or raise ``IndexBusyError`` when another build has it.
    Staging folders found then were left by a build that crashed: they are removed."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexBusyError(
                f"Another 'qa build' is writing the index at '{directory}'. "
                "Wait for it to finish, then run this build again."
            ) from None
        for stale in directory.glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        yield


def new_staging(directory: Path) -> Path:
    """An empty staging folder for this build; call it holding ``build_lock``."""
    staging = _staging(directory)
    staging.mkdir()
    return staging


def discard_staging(directory: Path) -> None:
    """Remove this build's staging folder (after a failure: it may hold the disk's last space)."""
    shutil.rmtree(_staging(directory), ignore_errors=True)


def _staging(directory: Path) -> Path:
    return directory / f".staging-{os.getpid()}"


class GenerationWriter:
    """Applies one build's changes to a copy of the previous generation in ``staging``."""

    def __init__(
        self, staging: Path, previous: Index | None, *, exact_search_max: int = EXACT_SEARCH_MAX
    ) -> None:
        self.staging = staging
        self.exact_search_max = exact_search_max
        # The previous generation's vectors of each space it has, which this build updates.
        self._previous = {
            space: previous.path / f"{space}.faiss"
            for space in VECTOR_SPACES
            if previous is not None and previous.vector_store(space) is not None
        }
        self._spaces: dict[str, FaissVectorsWriter] = {}
        if previous is None:
            self.db = sqlite3.connect(staging / "store.sqlite")
            self.db.executescript(SCHEMA + LAYOUT_SCHEMA)
        else:
            shutil.copyfile(previous.path / "store.sqlite", staging / "store.sqlite")
            self.db = sqlite3.connect(staging / "store.sqlite")
            self.db.executescript(LAYOUT_SCHEMA)  # migrates an index of format 1 or 2
        self.db.execute("PRAGMA journal_mode = OFF")  # staging is thrown away if the build fails
        self.db.execute("PRAGMA synchronous = OFF")  # commit() fsyncs the finished file
        if previous is not None and previous.manifest.format < HANGUL_PIECES_FORMAT:
            self._reindex_lexical()
        # AUTOINCREMENT: chunk ids are never reused, so a removed chunk's vector id is gone.
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
        self._next_id = 1 if row is None else int(row[0]) + 1
        self.removed: list[int] = []  # chunk ids whose vectors go

    def _reindex_lexical(self) -> None:
        """Rewrite the lexical index from the stored chunks in ``lexical_form`` (an index
        older than format 4 holds whole Hangul words). Nothing is embedded again."""
        self.db.create_function("lexical_form", 1, lexical_form, deterministic=True)
        self.db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES('delete-all')")
        self.db.execute(
            "INSERT INTO chunks_fts(rowid, title, text) SELECT c.id, lexical_form(d.title), "
            "lexical_form(c.text) FROM chunks c JOIN documents d ON d.source = c.source"
        )

    def remove_document(self, source: str) -> None:
        """Remove a document, its chunks and their lexical entries; its vectors go when the
        vectors are updated."""
        (title,) = self.db.execute("SELECT title FROM documents WHERE source = ?", (source,)).fetchone()
        rows = self.db.execute("SELECT id, text FROM chunks WHERE source = ?", (source,)).fetchall()
        self.db.executemany(
            "INSERT INTO chunks_fts(chunks_fts, rowid, title, text) VALUES('delete', ?, ?, ?)",
            [(chunk_id, lexical_form(title), lexical_form(text)) for chunk_id, text in rows],
        )
        self.removed.extend(row[0] for row in rows)
        self.db.execute("DELETE FROM chunks WHERE source = ?", (source,))
        self.db.execute("DELETE FROM documents WHERE source = ?", (source,))
        self.db.execute("DELETE FROM layout WHERE source = ?", (source,))

    def add_document(
        self,
        document: Document,
        chunks: Sequence[Chunk],
        *,
        edge_keys: Sequence[str] = (),
        furniture: Sequence[str] = (),
    ) -> list[int]:
        """Store a document, its layout and its chunks (text and lexical index); return the
        chunk ids, which its vectors must be given under. ``edge_keys`` are the keys of its
        edge paragraphs as read, ``furniture`` those removed as shared with other documents."""
        self.db.execute(
            "INSERT INTO documents(source, sha256, title, date, text) VALUES (?, ?, ?, ?, ?)",
            (document.source, document.sha256, document.title, document.date, document.text),
        )
        self.db.execute(
            "INSERT INTO layout(source, raw_chars, kept_chars, sections, pages, edge_keys, furniture) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                document.source,
                document.raw_chars,
                len(document.text),
                json.dumps(document.sections),
                json.dumps(document.pages),
                json.dumps(sorted(edge_keys)),
                json.dumps(sorted(furniture)),
            ),
        )
        ids = list(range(self._next_id, self._next_id + len(chunks)))
        self._next_id += len(chunks)
        self.db.executemany(
            "INSERT INTO chunks(id, source, ordinal, start, end, text) VALUES (?, ?, ?, ?, ?, ?)",
            [(i, c.source, c.ordinal, c.start, c.end, c.text) for i, c in zip(ids, chunks, strict=True)],
        )
        self.db.executemany(
            "INSERT INTO chunks_fts(rowid, title, text) VALUES (?, ?, ?)",
            [
                (i, lexical_form(document.title), lexical_form(c.text))
                for i, c in zip(ids, chunks, strict=True)
            ],
        )
        return ids

    def update_vectors(self, space: str, ids: np.ndarray, embeddings: np.ndarray) -> None:
        """Bring the ``space`` vector index up to date: the removed documents' vectors go,
        ``embeddings`` (one row per id in ``ids``) come in. Once per space and build."""
        vectors = FaissVectorsWriter(
            self.staging / f"{space}.faiss",
            self._previous.get(space),
            embeddings.shape[1],
            exact_search_max=self.exact_search_max,
        )
        vectors.update(np.array(self.removed, dtype=np.int64), ids, embeddings)
        self._spaces[space] = vectors

    def commit(
        self, *, settings: Settings, corpus_dir: Path, dense: ModelInfo, multilingual: ModelInfo | None
    ) -> Manifest:
        """Write the vector indexes and the manifest next to the finished chunk store, and
        fsync the lot. ``dense`` and ``multilingual`` name the encoders of each space."""
        models = {"dense": dense, "multilingual": multilingual}
        for space, model in models.items():
            if model is not None and space not in self._spaces:  # nothing new to embed
                self.update_vectors(space, np.zeros(0, np.int64), np.zeros((0, model.dimension), np.float32))
        (documents,) = self.db.execute("SELECT count(*) FROM documents").fetchone()
        self.db.commit()
        self.db.close()
        written = {space: self._spaces[space].save() for space, model in models.items() if model is not None}
        manifest = Manifest(
            format=FORMAT_VERSION,
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            corpus=str(corpus_dir.resolve()),
            settings=settings.build_signature(),
            chunker_version=CHUNKER_VERSION,
            dense=dense,
            multilingual=multilingual,
            vectors=VectorTypes(
                dense=written["dense"].kind,
                multilingual=written["multilingual"].kind if "multilingual" in written else None,
            ),
            chunks=written["dense"].count,
            documents=int(documents),
        )
        (self.staging / "manifest.json").write_text(json.dumps(manifest.to_json(), indent=1))
        for path in self.staging.iterdir():
            fsync(path)
        fsync(self.staging)
        return manifest


def publish(directory: Path, staging: Path) -> Path:
    """Make ``staging`` the live generation, then retire the generations no reader holds."""
    try:
        live = read_current(directory)
    except IndexCorruptError:
        live = None
    numbers = [int(m.group(1)) for p in directory.iterdir() if (m := GENERATION.match(p.name))]
    generation = directory / f"gen-{max(numbers, default=0) + 1:06d}"
    (staging / READERS).touch()
    staging.rename(generation)
    pointer = directory / f".{CURRENT}.tmp"
    pointer.write_text(generation.name + "\n")
    fsync(pointer)
    os.replace(pointer, directory / CURRENT)
    fsync(directory)
    retire_generations(directory, keep={generation.name, live.name if live is not None else ""})
    return generation


def retire_generations(directory: Path, *, keep: set[str]) -> list[str]:
    """Remove every generation but ``keep`` that no open ``Index`` holds; return their names.

    A reader holds its generation's ``.readers`` file with a shared lock; a generation is
    removed while holding it exclusively, so a reader that opens it meanwhile waits, then
    finds it gone and opens the live one (``qa.store.reader.pin_generation``). The one
    before the live generation is kept as well (``keep``): for readers on a filesystem
    whose locks do not reach other machines, it is what the one-rebuild grace period was.
    A held generation goes at the first build after its last reader closes it.
    """
    removed = []
    for old in sorted(directory.glob("gen-*")):
        if old.name not in keep and GENERATION.match(old.name) and _remove_unless_read(old):
            removed.append(old.name)
    return removed


def _remove_unless_read(generation: Path) -> bool:
    try:
        with open(generation / READERS, "ab") as handle:  # "ab": created for an older qa's generation
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a reader holds it
            shutil.rmtree(generation, ignore_errors=True)  # the lock is held until it is gone
            return True
    except (FileNotFoundError, NotADirectoryError):  # gone already, or not a generation folder
        return False
