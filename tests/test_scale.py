"""The approximate (IVF) vector index, for real, at a small scale with a low threshold.

A corpus of a few thousand chunks is built with ``exact_search_max`` forced low so that the
build takes the path a million-chunk corpus takes: an IVF index with 8-bit codes, updated in
place by incremental builds. Vectors come from a fast deterministic encoder whose texts fall
into topics, like real embeddings do.
"""

from __future__ import annotations

import random

import faiss
import numpy as np
import pytest

from qa.build import build_index
from qa.chunking import embedding_text
from qa.config import Settings
from qa.records import Chunk
from qa.store import open_index
from qa.store.vectors import flat_index, ivf_lists, stored_vectors, update_vectors
from qa.testing import chunk_store
from tests.fakes import HashingEncoder

TOPICS = 24
WORDS_PER_TOPIC = 40
THRESHOLD = 1_000


class TopicEncoder(HashingEncoder):
    """The hashing encoder with more dimensions: fewer collisions, clearer topics."""

    name = "test/hashing-128"
    dimension = 128


class CrossLingualEncoder(HashingEncoder):
    name = "test/hashing-96-multilingual"
    dimension = 96


def _sentence(rng: random.Random, topic: int) -> str:
    words = [f"t{topic}w{rng.randrange(WORDS_PER_TOPIC)}" for _ in range(9)]
    words += [f"t{rng.randrange(TOPICS)}w{rng.randrange(WORDS_PER_TOPIC)}" for _ in range(2)]
    return " ".join(words).capitalize() + "."


def _document(seed: int) -> str:
    rng = random.Random(seed)
    topic = rng.randrange(TOPICS)
    body = " ".join(_sentence(rng, topic if rng.random() < 0.8 else rng.randrange(TOPICS)) for _ in range(36))
    return f"Document {seed} about topic {topic}\n\n{body}\n"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(model=TopicEncoder.name, multilingual=False, chunk_size=300, chunk_overlap=0)


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    for n in range(240):
        (folder / f"doc{n:04d}.txt").write_text(_document(n))
    return folder


def _index_ids(vectors) -> np.ndarray:
    return np.sort(stored_vectors(vectors)[0])


def _store_ids(index) -> np.ndarray:
    return np.sort(
        np.array([row[0] for row in chunk_store(index).execute("SELECT id FROM chunks")], dtype=np.int64)
    )


def _exact_top(matrix: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> list[set[int]]:
    scores = queries @ matrix.T
    top = np.argsort(-scores, axis=1)[:, :k]
    return [set(ids[row].tolist()) for row in top]


def test_ivf_build_incremental_changes_and_recall(corpus, tmp_path, settings):
    encoder = TopicEncoder()
    index_dir = tmp_path / "index"
    report = build_index(corpus, index_dir, settings=settings, encoder=encoder, exact_search_max=THRESHOLD)
    index = open_index(index_dir)
    assert report.chunks > 2 * THRESHOLD, "the test corpus must be well past the threshold"
    assert index.vector_index_type == "ivf-sq8" and index.manifest.vectors.dense == "ivf-sq8"
    assert isinstance(index.dense, faiss.IndexIVF) and index.dense.ntotal == index.chunk_count
    np.testing.assert_array_equal(_index_ids(index.dense), _store_ids(index))

    # Recall@10 against exact search over the same (unquantised) vectors, for new queries.
    rows = chunk_store(index).execute(
        "SELECT c.id, d.title, c.text FROM chunks c JOIN documents d USING(source)"
    )
    ids, titles, texts = zip(*rows, strict=True)
    exact = TopicEncoder().encode(
        [embedding_text(t, Chunk("", 0, 0, 0, x)) for t, x in zip(titles, texts, strict=True)]
    )
    rng = random.Random(7)
    questions = [_sentence(rng, rng.randrange(TOPICS)) for _ in range(100)]
    queries = TopicEncoder().encode(questions)
    truth = _exact_top(exact, np.array(ids), queries, 10)
    found = [{i for i, _ in index.search_dense(q, 10)} for q in queries]
    recall = np.mean([len(f & t) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.95, recall

    # retrieve.py scores hits by reconstructing their stored vectors.
    some = list(ids[:5])
    approx = index.dense_scores(queries[0], some)
    np.testing.assert_allclose(approx, exact[:5] @ queries[0], atol=0.01)
    np.testing.assert_allclose(
        [np.dot(index.dense.reconstruct(i), queries[0]) for i in some], approx, rtol=1e-5, atol=1e-6
    )

    # One file changed, one deleted, one added: only their chunks are embedded, nothing stale.
    old_ids = set(
        chunk_store(index).execute("SELECT id FROM chunks WHERE source IN ('doc0003.txt', 'doc0004.txt')")
    )
    (corpus / "doc0003.txt").write_text("Edited\n\nA quokka wombat platypus sentence stands alone here.\n")
    (corpus / "doc0004.txt").unlink()
    (corpus / "new.txt").write_text("Added\n\nThe echidna numbat bilby report arrived today.\n")
    encoder.embedded.clear()
    report = build_index(corpus, index_dir, settings=settings, encoder=encoder, exact_search_max=THRESHOLD)
    assert (report.added, report.changed, report.removed) == (["new.txt"], ["doc0003.txt"], ["doc0004.txt"])
    assert report.embedded_chunks == 2 == len(encoder.embedded)
    after = open_index(index_dir)
    assert after.vector_index_type == "ivf-sq8"
    assert after.dense.nlist == index.dense.nlist, "a small change is applied in place, not retrained"
    np.testing.assert_array_equal(_index_ids(after.dense), _store_ids(after))
    for (stale,) in old_ids:
        with pytest.raises(RuntimeError):
            after.dense.reconstruct(stale)
    hit, score = after.search_dense(TopicEncoder().encode(["quokka wombat platypus"])[0], 1)[0]
    assert after.chunks([hit])[hit].chunk.source == "doc0003.txt" and score > 0.5


def test_the_index_type_follows_the_corpus_size_across_incremental_builds(corpus, tmp_path, settings):
    encoder, multilingual = TopicEncoder(), CrossLingualEncoder()
    both = Settings(model=settings.model, multilingual=True, chunk_size=300, chunk_overlap=0)
    index_dir = tmp_path / "index"
    files = sorted(corpus.iterdir())
    parked = tmp_path / "parked"
    parked.mkdir()
    for path in files[40:]:
        path.rename(parked / path.name)

    def build():
        build_index(corpus, index_dir, settings=both, encoder=encoder, multilingual_encoder=multilingual,
                    exact_search_max=THRESHOLD)  # fmt: skip
        index = open_index(index_dir)
        np.testing.assert_array_equal(_index_ids(index.dense), _store_ids(index))
        np.testing.assert_array_equal(_index_ids(index.multilingual), _store_ids(index))
        return index

    small = build()
    assert small.chunk_count < THRESHOLD and small.vector_index_type == "flat"
    for path in sorted(parked.iterdir()):  # the corpus grows past the threshold
        path.rename(corpus / path.name)
    grown = build()
    assert grown.vector_index_type == "ivf-sq8"
    assert isinstance(grown.multilingual, faiss.IndexIVF), "the cross-lingual index scales the same way"
    for path in files[60:]:  # shrinks, but stays above half the threshold: still IVF
        path.unlink()
    assert build().vector_index_type == "ivf-sq8"
    for path in files[20:60]:  # below half: exact again
        path.unlink()
    assert build().vector_index_type == "flat"


def test_update_vectors_retrains_when_the_corpus_outgrows_its_lists():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((30, 32)).astype(np.float32)

    def vectors(n: int) -> np.ndarray:
        v = centres[rng.integers(0, 30, n)] + 0.3 * rng.standard_normal((n, 32)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    none = np.zeros(0, dtype=np.int64)
    index = update_vectors(None, 32, none, np.arange(3000), vectors(3000), 1000)
    lists = index.nlist
    assert lists == ivf_lists(3000)
    index = update_vectors(index, 32, np.arange(10), np.arange(3000, 4000), vectors(1000), 1000)
    assert index.nlist == lists and index.ntotal == 3990
    index = update_vectors(index, 32, none, np.arange(4000, 16000), vectors(12000), 1000)
    assert index.nlist >= 2 * lists and index.ntotal == 15990, "retrained for the larger corpus"
    ids = stored_vectors(index)[0]
    assert sorted(ids.tolist()) == list(range(10, 16000))
    flat = update_vectors(flat_index(32), 32, none, np.arange(5), vectors(5), 1000)
    assert not isinstance(flat, faiss.IndexIVF) and flat.ntotal == 5


def test_lexical_search_on_a_large_index_scores_common_words_only_with_rare_ones(
    corpus, tmp_path, settings, monkeypatch
):
    import qa.store.reader

    (corpus / "rare.txt").write_text("Rare\n\nThe quokka delegation arrived in Busan.\n")
    (corpus / "both.txt").write_text("Quokka document\n\nA quokka topic: the document of a quokka.\n")
    build_index(corpus, tmp_path / "index", settings=settings, encoder=TopicEncoder())
    terms = ["document", "topic", "quokka"]  # every title says "Document n about topic t"
    everything = open_index(tmp_path / "index").search_lexical(terms, 50)
    assert len(everything) == 50, "a small index matches every word"

    monkeypatch.setattr(qa.store.reader, "LEXICAL_POSTINGS_BUDGET", 100)
    index = open_index(tmp_path / "index")
    assert index.chunk_count > 100
    assert index.selective_terms(terms) == ["quokka"]
    hits = index.search_lexical(terms, 50)
    assert {c.chunk.source for c in index.chunks([i for i, _ in hits]).values()} == {"rare.txt", "both.txt"}
    # The chunks found score as the whole query scores them: common words count where a
    # rare one is present.
    assert [i for i, _ in hits] == [i for i, _ in everything[:2]]
    assert [s for _, s in hits] == pytest.approx([s for _, s in everything[:2]])
    assert len(index.search_lexical(["document"], 5)) == 5, "a lone common word is still searched"


def test_a_reader_keeps_searching_its_memory_mapped_vectors_after_two_rebuilds(corpus, tmp_path, settings):
    encoder = TopicEncoder()
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, settings=settings, encoder=encoder)
    reader = open_index(index_dir)
    query = encoder.encode(["t3w1 t3w2 t3w3"])[0]
    before = reader.search_dense(query, 5)
    for n in range(2):  # the second publish would delete the generation if no reader held it
        (corpus / f"new{n}.txt").write_text(f"New {n}\n\nA quokka numbat sentence {n}.\n")
        build_index(corpus, index_dir, settings=settings, encoder=encoder)
    assert reader.path.exists(), "an open reader pins its generation (qa.store.reader.pin_generation)"
    assert reader.search_dense(query, 5) == before
    assert reader.dense_scores(query, [before[0][0]])[0] == pytest.approx(before[0][1], abs=1e-5)
