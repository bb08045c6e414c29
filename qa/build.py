"""The build: scan → diff → read → chunk → embed → write, incrementally by content hash.

``build_index`` walks a corpus folder through ``corpus`` (which files, their hashes),
``ingest`` (each file's cleaned text), ``chunking`` (chunks and the text each is embedded
as), ``embed`` (vectors) and ``store.writer`` (a new generation, published atomically).
Only new and changed documents are read and embedded; removed ones leave nothing behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from qa.chunking import CHUNKER_VERSION, chunk_document, embedding_text
from qa.cleaning import corpus_furniture, edge_keys, remove_corpus_furniture
from qa.config import MULTILINGUAL_MODEL, Settings
from qa.corpus import diff_corpus, discard_previous_versions, scan_corpus
from qa.embed import Encoder, MultilingualEncoder, OnnxMiniLMEncoder, shared_encoder
from qa.errors import IndexMismatchError, IndexNotFoundError, QAError, ResourceError
from qa.records import BuildReport, CleaningNote, CorpusChanges, Document, ModelInfo, SkippedFile
from qa.sandbox import DocumentReaders, ReadLimits
from qa.store.reader import Index, open_index
from qa.store.vectors import EXACT_SEARCH_MAX
from qa.store.writer import GenerationWriter, build_lock, discard_staging, new_staging, publish

# (stage, done, total): stages are "scan", "read", "embed", "embed-multilingual", "write".
BuildProgress = Callable[[str, int, int], None]
# A document whose cleaning removed more than this share of its text is named in the report.
REPORTED_REMOVAL = 0.1


def settings_as_built(index_dir: str | os.PathLike[str]) -> Settings:
    """The settings the index in ``index_dir`` was built with, or the defaults when there is
    no readable index. ``build_index(settings=None)`` builds with these, so a rebuild keeps
    an index's model and chunking unless told otherwise."""
    with contextlib.suppress(QAError):  # no usable index: the defaults
        return open_index(index_dir).manifest.build_settings
    return Settings()


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
    read_limits: ReadLimits | None = None,
    ray: str | None = None,
) -> BuildReport:
    """Bring the index in line with the corpus, embedding only new and changed documents.

    ``settings=None`` builds with the settings the existing index was built with (the
    defaults for a new one); ``full=True`` rebuilds from scratch. Vector search is exact up
    to ``exact_search_max`` chunks (default ``EXACT_SEARCH_MAX``) and approximate (IVF)
    beyond. Each file is read in a sandboxed worker process within ``read_limits`` (default
    ``ReadLimits()``: 60 s, 1 GB); a file over them is skipped with the reason. With ``ray``
    (a Ray cluster's address, or ``"auto"``) the chunks to embed are embedded on that
    cluster (``qa.distributed``); everything else runs here as without it. Raises
    ``IndexMismatchError`` when the existing index was built with other settings than the
    ones given, ``IndexBusyError`` when another build holds the index and ``ResourceError``
    when the disk is full, the index folder not writable or memory short, and
    ``ClusterError`` when ``ray`` is given but the cluster cannot embed (the index is then
    unchanged).
    """
    started = time.perf_counter()
    settings = settings_as_built(index_dir) if settings is None else settings
    encoder = shared_encoder(settings.model) if encoder is None else encoder
    if settings.multilingual and multilingual_encoder is None:
        multilingual_encoder = shared_encoder(MULTILINGUAL_MODEL)
    if ray is not None:
        from qa.distributed import RayEncoder

        encoder = RayEncoder(encoder, address=ray)
        if multilingual_encoder is not None:
            multilingual_encoder = RayEncoder(multilingual_encoder, address=ray)
    report = progress if progress is not None else (lambda stage, done, total: None)
    directory = Path(index_dir)

    with _resource_errors(directory), build_lock(directory), DocumentReaders(read_limits) as readers:
        previous = None if full else _open_previous(directory, settings)
        files, skipped = scan_corpus(corpus_dir)
        report("scan", len(files), len(files))
        diff = diff_corpus(files, previous.document_hashes if previous is not None else {})
        added, changed, removed, unchanged = diff.added, diff.changed, diff.removed, diff.unchanged
        if previous is not None and not (added or changed or removed):
            return BuildReport([], [], [], unchanged, skipped, previous.chunk_count, 0,
                               time.perf_counter() - started)  # fmt: skip

        staging = new_staging(directory)
        writer = GenerationWriter(
            staging,
            previous,
            exact_search_max=EXACT_SEARCH_MAX if exact_search_max is None else exact_search_max,
        )
        for source in changed + removed:
            writer.remove_document(source)
        current = {f.source: f for f in files}
        to_read = [current[s] for s in added + changed]
        documents: list[Document] = []
        for done, (file, result) in enumerate(readers.read(to_read), start=1):
            if isinstance(result, Exception):
                skipped.append(SkippedFile(file.source, str(result)))
            else:
                documents.append(result)
            report("read", done, len(to_read))
        furniture, refreshed = _corpus_furniture(previous, unchanged, documents)
        for source in refreshed:  # their shared furniture changed with this build's documents
            writer.remove_document(source)
        for file, result in readers.read([current[s] for s in refreshed]):
            if isinstance(result, Exception):
                skipped.append(SkippedFile(file.source, str(result)))
            else:
                documents.append(result)
        changed = sorted(changed + refreshed)
        unchanged = [s for s in unchanged if s not in set(refreshed)]
        pending: list[tuple[int, str]] = []
        cleaned: list[CleaningNote] = []
        for document in documents:
            keys = edge_keys(document.text)
            removed_keys = sorted(set(keys) & furniture)
            stripped = remove_corpus_furniture(document, furniture) if removed_keys else document
            pending += stage_document(writer, stripped, settings, edge_keys=keys, furniture=removed_keys)
            note = CleaningNote(document.source, document.raw_chars, len(stripped.text))
            if note.kept_share < 1 - REPORTED_REMOVAL:
                cleaned.append(note)
        embed_chunks(writer, pending, encoder, multilingual_encoder, report)
        report("write", 0, 1)
        manifest = writer.commit(
            settings=settings,
            corpus_dir=Path(corpus_dir),
            dense=_model_info(encoder),
            multilingual=None if multilingual_encoder is None else _model_info(multilingual_encoder),
        )
        publish(directory, staging)
        report("write", 1, 1)
    discard_previous_versions(Path(corpus_dir))  # the versions uploads replaced: the index moved on

    skipped_sources = {s.source for s in skipped}
    return BuildReport(
        added=[s for s in added if s not in skipped_sources],
        changed=[s for s in changed if s not in skipped_sources],
        removed=removed + [s for s in changed if s in skipped_sources],
        unchanged=unchanged,
        skipped=skipped,
        chunks=manifest.chunks,
        embedded_chunks=len(pending),
        seconds=time.perf_counter() - started,
        cleaned=sorted(cleaned, key=lambda note: note.kept_share),
    )


@contextlib.contextmanager
def _resource_errors(directory: Path) -> Iterator[None]:
    """Turn the machine's refusals (disk full, no permission, no memory), whichever layer
    meets them (a file write, sqlite, FAISS), into one ``ResourceError`` that says what to do."""
    try:
        yield
    except MemoryError:
        discard_staging(directory)
        raise ResourceError(
            f"Ran out of memory while building the index at '{directory}'. Close other programs "
            "or build a smaller corpus. The index is unchanged."
        ) from None
    except (OSError, sqlite3.OperationalError, RuntimeError) as exc:
        cause = _resource_cause(exc)
        if cause is None:
            raise
        discard_staging(directory)
        raise ResourceError(
            f"Could not write the index at '{directory}': {cause}. The index is unchanged."
        ) from exc


_NO_SPACE = "the disk is full or refused the write; free some space and run the build again"
_NO_PERMISSION = "permission denied; make the folder writable, or pass --index with a folder you can write"


def _resource_cause(exc: BaseException) -> str | None:
    """What ran out, and what to do, or None when ``exc`` is not about the machine's resources."""
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            return _NO_SPACE
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return _NO_PERMISSION
        return None
    message = str(exc).lower()
    # sqlite: "database or disk is full" or "disk I/O error" (EFBIG); FAISS: "... No space left
    # on device" or "File too large".
    if any(
        words in message for words in ("disk is full", "disk i/o error", "no space left", "file too large")
    ):
        return _NO_SPACE
    if "readonly database" in message or "permission denied" in message:
        return _NO_PERMISSION
    return None


def _corpus_furniture(
    previous: Index | None, unchanged: list[str], documents: list[Document]
) -> tuple[set[str], list[str]]:
    """The edge paragraphs shared by enough documents to be the corpus's furniture, and the
    unchanged documents whose share of it changed (they are cleaned again; their content
    hashes, and so their identity in the index, stay as they are)."""
    stored = previous.edges() if previous is not None else {}
    kept = {source: stored[source] for source in unchanged if source in stored}
    keys = {source: edge for source, (edge, _) in kept.items()}
    keys.update((d.source, edge_keys(d.text)) for d in documents)
    furniture = corpus_furniture(keys)
    refreshed = sorted(s for s, (edge, removed) in kept.items() if sorted(set(edge) & furniture) != removed)
    return furniture, refreshed


def stage_document(
    writer: GenerationWriter,
    document: Document,
    settings: Settings,
    *,
    edge_keys: Sequence[str] = (),
    furniture: Sequence[str] = (),
) -> list[tuple[int, str]]:
    """Chunk ``document`` and store it; return (chunk id, text to embed) for each chunk.
    ``edge_keys`` and ``furniture`` are recorded for the next build's furniture check."""
    chunks = chunk_document(document, size=settings.chunk_size, overlap=settings.chunk_overlap)
    ids = writer.add_document(document, chunks, edge_keys=edge_keys, furniture=furniture)
    return [(i, embedding_text(document.title, c)) for i, c in zip(ids, chunks, strict=True)]


def embed_chunks(
    writer: GenerationWriter,
    pending: list[tuple[int, str]],
    encoder: Encoder,
    multilingual_encoder: Encoder | None,
    progress: BuildProgress,
) -> None:
    """Embed the staged chunks in each space and bring the writer's vector indexes up to date.

    With both spaces and enough chunks, the two models encode at the same time, each on its
    share of the cores (``_concurrent_embed``)."""
    ids = np.array([chunk_id for chunk_id, _ in pending], dtype=np.int64)
    texts = [text for _, text in pending]
    if multilingual_encoder is not None and len(texts) >= CONCURRENT_EMBED:
        dense, multilingual = _concurrent_embed(encoder, multilingual_encoder, texts, progress)
        writer.update_vectors("dense", ids, dense)
        writer.update_vectors("multilingual", ids, multilingual)
        return
    spaces = [("dense", encoder, "embed"), ("multilingual", multilingual_encoder, "embed-multilingual")]
    for space, space_encoder, stage in spaces:
        if space_encoder is not None:
            writer.update_vectors(space, ids, _embed(space_encoder, texts, stage, progress))


# Chunks from which a build runs both encoders at once: below it, loading the second model
# on its own thread is not worth it.
CONCURRENT_EMBED = 64
BUILT_IN = (OnnxMiniLMEncoder, MultilingualEncoder)  # encoders whose build threads can be set


def _concurrent_embed(
    encoder: Encoder, multilingual_encoder: Encoder, texts: list[str], progress: BuildProgress
) -> tuple[np.ndarray, np.ndarray]:
    """Both spaces' vectors of ``texts``, the cross-lingual ones encoded on a second thread.

    One model on every core scales poorly: a small model's matrix products split across
    two cores gain far less than twice, and under load they lose (a core waits for the
    other). So each built-in encoder gets its share of the cores, both models load at once,
    and the one still running takes every core when the other is done (from its next
    block). Progress reports the stages one after the other, as a sequential build does.
    300 SciFact abstracts on the 2-core machine, in one run: 59.6 s against 91.8 s one
    model after the other, LlamaIndex 64.3 s (medians; benchmarks/RESULTS.md, "Issue 13").
    """
    cores = os.cpu_count() or 1
    previous = [(e, e.threads) for e in (encoder, multilingual_encoder) if isinstance(e, BUILT_IN)]
    _set_threads(encoder, max(1, cores // 2))
    _set_threads(multilingual_encoder, max(1, cores - cores // 2))
    done = [0]
    result: list[np.ndarray] = []
    failure: list[BaseException] = []

    def cross_lingual() -> None:
        def count(finished: int, total: int) -> None:
            done[0] = finished

        try:
            result.append(multilingual_encoder.encode(texts, progress=count))
            _set_threads(encoder, cores)  # the dense encode, if still running, takes every core
        except BaseException as exc:  # raised again on the build's thread
            failure.append(exc)

    # A daemon: when the dense encode fails, the build raises at once and the cross-lingual
    # encode's result is dropped.
    worker = threading.Thread(target=cross_lingual, name="qa-embed-multilingual", daemon=True)
    worker.start()
    try:
        dense = _embed(encoder, texts, "embed", progress)
        _set_threads(multilingual_encoder, cores)
        progress("embed-multilingual", done[0], len(texts))
        while worker.is_alive():
            worker.join(timeout=0.5)
            progress("embed-multilingual", done[0], len(texts))
    finally:
        for built_in, threads in previous:
            built_in.threads = threads
    if failure:
        raise failure[0]
    return dense, result[0]


def _set_threads(encoder: Encoder, threads: int) -> None:
    """Set a built-in encoder's build threads; other encoders keep their own."""
    if isinstance(encoder, BUILT_IN):
        encoder.threads = threads


def _embed(encoder: Encoder, texts: list[str], stage: str, progress: BuildProgress) -> np.ndarray:
    if not texts:
        return np.zeros((0, encoder.dimension), dtype=np.float32)
    progress(stage, 0, len(texts))  # the bar (and its ETA) starts before the first block
    return encoder.encode(texts, progress=lambda done, total: progress(stage, done, total))


def _model_info(encoder: Encoder) -> ModelInfo:
    return ModelInfo(encoder.name, encoder.dimension)


def corpus_changes(corpus_dir: str | os.PathLike[str], index: Index) -> CorpusChanges:
    """What a ``build_index`` of ``corpus_dir`` would add, re-embed and remove."""
    files, _ = scan_corpus(corpus_dir)
    return diff_corpus(files, index.document_hashes)


def _open_previous(directory: Path, settings: Settings) -> Index | None:
    try:
        previous = open_index(directory)
    except IndexNotFoundError:
        return None
    previous.check_settings(settings)
    if previous.manifest.chunker_version != CHUNKER_VERSION:
        raise IndexMismatchError(
            f"The index at '{directory}' was chunked by an older version of qa. "
            "Run 'qa build --full' to rebuild it."
        )
    return previous
