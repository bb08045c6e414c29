"""Large synthetic indexes (100k, 1M chunks) written directly in the store's on-disk format.

It is the index and the chunk store being measured here, not the encoder: a real index of
real documents (any ``qa build`` output; by default SciFact, built and cached once) supplies
documents, chunks and their real embeddings (cross-lingual ones for a sample of chunks when
the base has none), and copies of them fill the large index. Each
copy's vectors are the real ones plus a small random perturbation, re-normalised (cosine to
the original about 0.96), so copies are near, not identical, neighbours. Texts repeat, which
makes the lexical index's posting lists as long as a corpus of that size has for its common
words. The result has the same manifest/CURRENT/generation layout as a built index, so
``open_index`` and ``Engine`` work on it, and the vector index is chosen by the product's own
rule (``qa.store.vectors.update_vectors``), through the same writer a build uses.

    python -m benchmarks.synthetic --chunks 1000000 --out /tmp/qa-1m [--base INDEX_DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from benchmarks._common import cache_dir, scifact_documents, write_scifact_corpus
from qa.config import DEFAULT_MODEL, MULTILINGUAL_MODEL, Settings
from qa.records import Chunk, Document, ModelInfo
from qa.store import open_index
from qa.store.vectors import EXACT_SEARCH_MAX, stored_vectors
from qa.store.writer import GenerationWriter, new_staging, publish
from qa.testing import chunk_store

NOISE = 0.3  # perturbation norm relative to the unit vector: cosine to the original ~ 0.96


@dataclass
class Base:
    documents: list[tuple[str, str, str | None, str]]  # source, title, date, text
    chunks: list[tuple[int, str, int, int, int, str]]  # id, source, ordinal, start, end, text
    dense: dict[int, np.ndarray]  # chunk id -> vector
    multilingual: dict[int, np.ndarray] | None


USE_SAMPLE = 2048  # chunks given real cross-lingual vectors when the base index has none


def load_base(index_dir: Path) -> Base:
    """Documents, chunks and vectors of an existing index. A base built without the
    cross-lingual index gets real USE vectors for its first ``USE_SAMPLE`` chunks, cycled
    over the rest (cached)."""
    index = open_index(index_dir)
    db = chunk_store(index)
    documents = list(db.execute("SELECT source, title, date, text FROM documents ORDER BY source"))
    chunks = list(
        db.execute("SELECT id, source, ordinal, start, end, text FROM chunks ORDER BY source, ordinal")
    )

    def vectors(index_vectors: faiss.Index | None) -> dict[int, np.ndarray] | None:
        if index_vectors is None:
            return None
        ids, matrix = stored_vectors(index_vectors)
        return {int(i): row for i, row in zip(ids, matrix, strict=True)}

    dense = vectors(index.dense)
    assert dense is not None
    multilingual = vectors(index.multilingual)
    if multilingual is None:
        from benchmarks._common import cached_embeddings
        from qa.chunking import embedding_text

        titles = {source: title for source, title, _, _ in documents}
        texts = [embedding_text(titles[row[1]], Chunk(*row[1:])) for row in chunks[:USE_SAMPLE]]
        use = cached_embeddings("base-use-sample", texts, MULTILINGUAL_MODEL)
        multilingual = {row[0]: use[n % len(use)] for n, row in enumerate(chunks)}
    return Base(documents, chunks, dense, multilingual)


def scifact_base(limit: int | None = None) -> Path:
    """A real index of SciFact (both encoders), built once and kept in the cache folder."""
    from qa.build import build_index

    folder = cache_dir() / f"scifact-base-{limit or 'all'}"
    if (folder / "index" / "CURRENT").exists():
        return folder / "index"
    corpus = folder / "corpus"
    if corpus.exists():
        shutil.rmtree(corpus)
    write_scifact_corpus(corpus, scifact_documents(limit=limit))
    print(f"building the base index of SciFact in {folder} (once; real models)...", file=sys.stderr)
    build_index(corpus, folder / "index", settings=Settings())
    return folder / "index"


def _perturb(vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(vectors.shape, dtype=np.float32) * (NOISE / np.sqrt(vectors.shape[1]))
    out = vectors + noise
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def make_synthetic_index(
    out: Path,
    chunks: int,
    base: Base,
    *,
    multilingual: bool = True,
    exact_search_max: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Write an index of about ``chunks`` chunks (whole documents) to ``out``; return timings."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    staging = new_staging(out)
    exact_max = EXACT_SEARCH_MAX if exact_search_max is None else exact_search_max
    writer = GenerationWriter(staging, None, exact_search_max=exact_max)
    by_source: dict[str, list[tuple[int, str, int, int, int, str]]] = {}
    for row in base.chunks:
        by_source.setdefault(row[1], []).append(row)

    rng = np.random.default_rng(seed)
    use_multilingual = multilingual and base.multilingual is not None
    ids: list[int] = []
    originals: list[int] = []
    copy = 0
    while len(ids) < chunks:
        for source, title, date, text in base.documents:
            if len(ids) >= chunks:
                break
            name = f"copy{copy:04d}/{source}"
            digest = hashlib.sha256(f"{copy}\x00{text}".encode()).hexdigest()
            rows = by_source.get(source, [])
            copied = [
                Chunk(name, ordinal, start, end, chunk_text) for _, _, ordinal, start, end, chunk_text in rows
            ]
            ids += writer.add_document(Document(name, title, text, digest, date), copied)
            originals += [row[0] for row in rows]
        copy += 1
        if copy % 10 == 0 or len(ids) >= chunks:
            print(f"  store: {len(ids):,} chunks", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    timings["store_s"] = time.perf_counter() - started

    id_array = np.array(ids, dtype=np.int64)

    def add_vectors(space: str, table: dict[int, np.ndarray]) -> ModelInfo:
        began = time.perf_counter()
        dimension = len(next(iter(table.values())))
        matrix = np.empty((len(ids), dimension), dtype=np.float32)
        block = 100_000
        for first in range(0, len(ids), block):
            rows = np.stack([table[o] for o in originals[first : first + block]])
            matrix[first : first + block] = _perturb(rows, rng)
        writer.update_vectors(space, id_array, matrix)  # the product's flat/IVF rule
        timings[f"{space}_index_s"] = time.perf_counter() - began
        return ModelInfo(DEFAULT_MODEL if space == "dense" else MULTILINGUAL_MODEL, dimension)

    dense = add_vectors("dense", base.dense)
    cross = add_vectors("multilingual", base.multilingual) if use_multilingual and base.multilingual else None
    writer.commit(
        settings=Settings(multilingual=cross is not None),
        corpus_dir=out / "corpus-not-on-disk",
        dense=dense,
        multilingual=cross,
    )
    publish(out, staging)
    timings["total_s"] = time.perf_counter() - started
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--base", type=Path, help="a qa index to copy (default: SciFact, built once)")
    parser.add_argument("--no-multilingual", action="store_true")
    parser.add_argument("--exact-search-max", type=int)
    args = parser.parse_args()
    base = load_base(args.base if args.base is not None else scifact_base())
    timings = make_synthetic_index(
        args.out,
        args.chunks,
        base,
        multilingual=not args.no_multilingual,
        exact_search_max=args.exact_search_max,
    )
    index = open_index(args.out)
    print(f"{index.chunk_count:,} chunks, vectors {index.vector_index_type}, timings {timings}")


if __name__ == "__main__":
    main()
