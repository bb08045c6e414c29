"""Fusion and rescoring in ``retrieve``: the pure functions with hand-computed values, then a
``Retriever`` over a tiny real index built with the hashing encoder."""

from __future__ import annotations

import pytest

from qa.config import RetrievalOptions
from qa.retrieve import RRF_K, Retriever, convex_scores, fuse
from qa.store import open_index
from tests.conftest import fake_build


def test_reciprocal_rank_fusion_sums_one_over_k_plus_rank():
    ranked = {"dense": [(1, 0.9), (2, 0.8), (3, 0.7)], "lexical": [(3, 12.0), (4, 9.0)]}
    order, scores, ranks = fuse(ranked)
    assert order == [3, 1, 2, 4]  # in both lists beats first in one; ties keep list order
    assert scores[3] == pytest.approx(1 / (RRF_K + 3) + 1 / (RRF_K + 1))
    assert scores[1] == pytest.approx(1 / (RRF_K + 1))
    assert scores[2] == scores[4] == pytest.approx(1 / (RRF_K + 2))
    assert ranks == {1: {"dense": 1}, 2: {"dense": 2}, 3: {"dense": 3, "lexical": 1}, 4: {"lexical": 2}}
    assert fuse({}) == ([], {}, {})


def test_convex_scores_weigh_the_cosine_and_the_bm25_over_the_query_idf():
    scores = convex_scores([1, 2, 3], {1: 0.5, 2: 0.9, 3: 0.1}, {1: 10.0, 3: 5.0}, 0.5, 20.0)
    assert scores == pytest.approx({1: 0.25 + 0.25, 2: 0.45, 3: 0.05 + 0.125})
    # A BM25 above the scale counts as the whole query explained, no more.
    assert convex_scores([1], {1: 0.2}, {1: 30.0}, 0.5, 20.0) == pytest.approx({1: 0.1 + 0.5})
    # No lexical list: the cosine alone, scaled by its weight.
    assert convex_scores([1], {1: 0.8}, {}, 0.75, 0.0) == pytest.approx({1: 0.6})


@pytest.fixture(scope="module")
def retriever(tmp_path_factory) -> Retriever:
    from tests.fakes import HashingEncoder

    base = tmp_path_factory.mktemp("retrieve")
    corpus = base / "corpus"
    corpus.mkdir()
    (corpus / "ferry.txt").write_text("Ferry notes\n\nThe ferry to Quillon leaves at dawn from pier four.\n")
    (corpus / "crane.txt").write_text("Crane notes\n\nThe harbour crane lifts cargo onto the ferry deck.\n")
    (corpus / "storm.txt").write_text("Storm notes\n\nA storm closed the harbour for two days in May.\n")
    encoder = HashingEncoder()
    fake_build(corpus, base / "index", encoder)
    return Retriever(open_index(base / "index"), encoder, None)


def test_search_fuses_the_lists_and_reports_each_hits_ranks(retriever):
    query = retriever.query("ferry pier dawn")
    assert not query.cross_lingual and query.terms == ["ferry", "pier", "dawn"]
    fused = retriever.search(query, RetrievalOptions(k=3, rerank=False))
    assert fused[0].chunk.source == "ferry.txt"
    assert fused[0].ranks == {"dense": 1, "lexical": 1}
    assert [h.score for h in fused] == sorted((h.score for h in fused), reverse=True)
    assert fused[0].score == pytest.approx(2 / (RRF_K + 1))
    assert all(h.dense_score is not None for h in fused)

    lexical = retriever.search(query, RetrievalOptions(k=3, dense=False, rerank=False))
    assert {h.chunk.source for h in lexical} == {"ferry.txt", "crane.txt"}  # only they hold a word
    assert all(set(h.ranks) == {"lexical"} for h in lexical)


def test_rerank_orders_by_the_convex_score(retriever):
    options = RetrievalOptions(k=3, dense_weight=0.5)
    hits = retriever.search("ferry cargo crane", options)
    terms = ["ferry", "cargo", "crane"]
    lexical = dict(retriever.index.search_lexical(terms, options.candidates))
    expected = convex_scores(
        [h.chunk_id for h in hits],
        {h.chunk_id: h.dense_score for h in hits},
        lexical,
        0.5,
        retriever.index.lexical_idf(terms),
    )
    assert [h.score for h in hits] == pytest.approx([expected[h.chunk_id] for h in hits])
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].chunk.source == "crane.txt"


def test_a_non_latin_question_stays_in_the_dense_space_without_a_cross_lingual_index(retriever):
    assert not retriever.query("페리는 언제 출발하나요?").cross_lingual
