"""Candidate retrieval: dense, lexical and cross-lingual lists, fused, then rescored.

A question is searched in one language space, decided once (``Retriever.query``): the
English space of the dense model, or the cross-lingual one for non-Latin questions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from qa.config import RetrievalOptions
from qa.embed import Encoder
from qa.records import Hit
from qa.rerank import cross_encoder_rerank
from qa.store import Index
from qa.text import is_non_latin, query_terms

RRF_K = 60  # the constant of Cormack et al. (2009); damps the weight of the very top ranks

# (chunk id, score) lists by retriever name ("dense", "multilingual", "lexical"), best first.
Ranked = Mapping[str, Sequence[tuple[int, float]]]


def fuse(ranked: Ranked) -> tuple[list[int], dict[int, float], dict[int, dict[str, int]]]:
    """Reciprocal rank fusion: (chunk ids best first, fused score by id, each id's rank in
    each list). A chunk's score is the sum of 1 / (RRF_K + rank) over the lists it is in."""
    fused: dict[int, float] = {}
    ranks: dict[int, dict[str, int]] = {}
    for name, results in ranked.items():
        for rank, (chunk_id, _) in enumerate(results, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
            ranks.setdefault(chunk_id, {})[name] = rank
    return sorted(fused, key=lambda chunk_id: -fused[chunk_id]), fused, ranks


def convex_scores(
    pool: Sequence[int],
    dense: Mapping[int, float],
    lexical: Mapping[int, float],
    dense_weight: float,
    lexical_scale: float,
) -> dict[int, float]:
    """``dense_weight`` · exact cosine + the rest · BM25 over ``lexical_scale``, capped at 1:
    uses the scores' size, not just their order (Bruch et al., 2023). A chunk that the
    lexical search did not return has BM25 0.

    ``lexical_scale`` is the query's idf sum over the words the index holds
    (``Index.lexical_idf``): a chunk of average length holding each of them once scores
    about 1, one holding a single common word well below. So a lexical hit weighs what it
    explains of the words the index could match; normalising by the best BM25 gave the best
    hit full marks however little of the query it matched.
    """
    scale = lexical_scale if lexical_scale > 0 else 1.0
    return {
        i: dense_weight * dense[i] + (1 - dense_weight) * min(1.0, lexical.get(i, 0.0) / scale) for i in pool
    }


def query_dense_weight(base: float, lexical_coverage: float) -> float:
    """The dense weight of one query's ``convex_scores``: ``base`` when the index holds
    all of the query's words, rising to 1 as the share it holds (``Index.lexical_coverage``)
    falls to 0.

    Lexical evidence can only speak for the part of a question the index can match. A
    Korean question over English text matches a Latin name or a number at most; scaled by
    those words alone, such a match got full marks and pulled fusion below dense search
    (XOR-TyDi nDCG@10 0.673 against dense 0.731 when a word or two matched). Weighted by
    its coverage it nudges the order instead (0.734). benchmarks/RESULTS.md, "Issue 13".
    """
    coverage = min(1.0, max(0.0, lexical_coverage))
    return 1.0 - coverage * (1.0 - base)


class Query:
    """A question as the retriever searches it: its text, its content words, the language
    space it is searched in (decided once), and its embedding in that space (``embed``)."""

    def __init__(self, text: str, cross_lingual: bool, encoder: Encoder) -> None:
        self.text = text
        self.terms = query_terms(text)
        self.cross_lingual = cross_lingual
        self.encoder = encoder  # embeds the query, and the answer's sentences to compare with it
        self._vector: np.ndarray | None = None

    def embed(self) -> np.ndarray:
        """The query's embedding in its space, computed on the first call."""
        if self._vector is None:
            self._vector = self.encoder.encode([self.text])[0]
        return self._vector


class Retriever:
    """Searches one open index. Encoders must be the ones the index was built with."""

    def __init__(self, index: Index, encoder: Encoder, multilingual_encoder: Encoder | None) -> None:
        self.index = index
        self.encoder = encoder
        self.multilingual_encoder = multilingual_encoder

    def query(self, text: str) -> Query:
        """``text`` with its language space: cross-lingual when most of its letters are not
        Latin and the index has a cross-lingual space (MiniLM reads English)."""
        if (
            is_non_latin(text)
            and self.index.multilingual is not None
            and self.multilingual_encoder is not None
        ):
            return Query(text, True, self.multilingual_encoder)
        return Query(text, False, self.encoder)

    def search(self, query: Query | str, options: RetrievalOptions) -> list[Hit]:
        """The ``options.k`` best chunks for ``query``.

        Each enabled retriever returns ``options.candidates`` chunks; reciprocal rank fusion
        merges the lists. With ``rerank``, every fused candidate is then rescored by
        ``convex_scores`` of its exact cosine (in the query's space, cross-lingual too) and
        its BM25 score; with a
        ``cross_encoder``, the best candidates are reordered by it last.
        """
        query = self.query(query) if isinstance(query, str) else query
        ranked: dict[str, list[tuple[int, float]]] = {}
        if options.dense:
            if query.cross_lingual:
                ranked["multilingual"] = self.index.search_multilingual(query.embed(), options.candidates)
            else:
                ranked["dense"] = self.index.search_dense(query.embed(), options.candidates)
        if options.lexical:
            ranked["lexical"] = self.index.search_lexical(query.terms, options.candidates)

        pool, scores, ranks = fuse(ranked)
        # Every hit carries its exact cosine, whichever lists found it (a later stage may
        # weigh it); it is one batched lookup of the candidates' stored vectors.
        exact = self.index.dense_scores(query.embed(), pool, multilingual=query.cross_lingual)
        dense_scores = dict(zip(pool, exact.tolist(), strict=True))
        if options.rerank and pool:
            lexical = dict(ranked.get("lexical", []))
            weight = 1.0
            scale = 1.0
            if lexical:
                base = options.cross_lingual_dense_weight if query.cross_lingual else options.dense_weight
                weight = query_dense_weight(base, self.index.lexical_coverage(query.terms))
                scale = self.index.lexical_idf(query.terms)
            scores = convex_scores(pool, dense_scores, lexical, weight, scale)
            pool.sort(key=lambda chunk_id: -scores[chunk_id])
        head = options.k
        if options.cross_encoder is not None:
            head = max(head, options.cross_encoder_candidates)
        best = pool[:head]
        stored = self.index.chunks(best)
        hits = [
            Hit(
                chunk_id=i,
                chunk=stored[i].chunk,
                title=stored[i].title,
                date=stored[i].date,
                score=scores[i],
                dense_score=dense_scores.get(i),
                ranks=ranks[i],
            )
            for i in best
        ]
        if options.cross_encoder is not None:
            hits = cross_encoder_rerank(
                options.cross_encoder, query.text, hits, options.cross_encoder_candidates
            )
        return hits[: options.k]
