"""Fusion and rescoring in ``retrieve``: the pure functions with hand-computed values, then a
``Retriever`` over a tiny real index built with the hashing encoder."""

from __future__ import annotations

import pytest

from qa.build import build_index
from qa.config import RetrievalOptions
from qa.retrieve import RRF_K, Retriever, convex_scores, fuse, query_dense_weight
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


def test_the_dense_weight_rises_to_one_as_the_index_holds_less_of_the_query():
    assert query_dense_weight(0.5, 1.0) == pytest.approx(0.5)  # every word held: the base weight
    assert query_dense_weight(0.3, 1.0) == pytest.approx(0.3)
    assert query_dense_weight(0.5, 0.2) == pytest.approx(0.9)  # BM25 keeps the share it can explain
    assert query_dense_weight(0.5, 0.0) == query_dense_weight(0.5, -0.1) == 1.0  # nothing held: dense
    assert query_dense_weight(0.5, 1.7) == pytest.approx(0.5)


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
    hits = retriever.search("ferry cargo crane zeppelin", options)
    terms = ["ferry", "cargo", "crane", "zeppelin"]
    coverage = retriever.index.lexical_coverage(terms)
    assert 0.0 < coverage < 1.0  # no chunk holds zeppelin
    lexical = dict(retriever.index.search_lexical(terms, options.candidates))
    expected = convex_scores(
        [h.chunk_id for h in hits],
        {h.chunk_id: h.dense_score for h in hits},
        lexical,
        query_dense_weight(0.5, coverage),
        retriever.index.lexical_idf(terms),
    )
    assert [h.score for h in hits] == pytest.approx([expected[h.chunk_id] for h in hits])
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].chunk.source == "crane.txt"


def test_a_non_latin_question_stays_in_the_dense_space_without_a_cross_lingual_index(retriever):
    assert not retriever.query("페리는 언제 출발하나요?").cross_lingual


@pytest.mark.slow
def test_a_latin_word_in_a_korean_question_does_not_outrank_the_passage_that_answers_it(
    tmp_path, encoder, multilingual_encoder
):
    """Korean question, English corpus: only "1889" can match lexically, and only in the
    wrong document. Scaled by the words the index holds, that match alone earned full lexical
    marks and ranked the wrong document first; weighted by the share of the question it
    covers, it leaves the order to the cross-lingual model."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "eiffel.txt").write_text(
        "Eiffel Tower\n\nThe Eiffel Tower is a wrought-iron lattice tower in Paris. It was built "
        "as the entrance arch of the World's Fair held in the city at the end of the 1880s.\n"
    )
    (corpus / "oklahoma.txt").write_text(
        "Land Rush of 1889\n\nThe Land Rush of 1889 opened unassigned lands in Oklahoma to settlers. "
        "On April 22, 1889, about 50,000 people lined up to claim farms. The rush of 1889 founded towns.\n"
    )
    (corpus / "bridge.txt").write_text(
        "Tower Bridge\n\nTower Bridge crosses the River Thames in London near the Tower of London.\n"
    )
    build_index(corpus, tmp_path / "index", encoder=encoder, multilingual_encoder=multilingual_encoder)
    retriever = Retriever(open_index(tmp_path / "index"), encoder, multilingual_encoder)
    query = retriever.query("1889년 파리 만국박람회를 위해 세워진 철탑은 무엇인가요?")
    assert query.cross_lingual
    assert 0 < retriever.index.lexical_coverage(query.terms) < 0.2  # "1889" alone is held
    dense = retriever.search(query, RetrievalOptions(k=3, lexical=False))
    assert dense[0].chunk.source == "eiffel.txt"
    hits = retriever.search(query, RetrievalOptions(k=3))
    assert hits[0].chunk.source == "eiffel.txt"
    assert hits[0].ranks.get("lexical") is None and hits[1].chunk.source == "oklahoma.txt"
