"""Candidate retrieval: dense, lexical and cross-lingual lists, fused, then reranked."""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from qa.config import RetrievalOptions
from qa.embed import Encoder
from qa.records import Hit
from qa.rerank import shared_reranker
from qa.store import Index

RRF_K = 60  # the constant of Cormack et al. (2009); damps the weight of the very top ranks

STOPWORDS = frozenset(
    """a an and are as at be been being but by can could did do does for from had has have how
    i if in into is it its of on or s such that the their them then there these they this to
    was were what when where which who whom whose why will with would you your about after
    also any between during over under up than so not no nor our we he she his her""".split()  # noqa: SIM905
)
_WORD = re.compile(r"\w+", re.UNICODE)


def query_terms(text: str) -> list[str]:
    """Lower-cased content words of ``text``, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word)
    return list(seen)


def is_non_latin(text: str) -> bool:
    """True when most letters are outside the Latin script (Korean, Chinese, Cyrillic...)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return False
    latin = sum(1 for c in letters if unicodedata.name(c, "").startswith("LATIN"))
    return latin < 0.5 * len(letters)


class Retriever:
    """Searches one open index. Encoders must be the ones the index was built with."""

    def __init__(self, index: Index, encoder: Encoder, multilingual_encoder: Encoder | None) -> None:
        self.index = index
        self.encoder = encoder
        self.multilingual_encoder = multilingual_encoder

    def cross_lingual(self, query: str) -> bool:
        """Whether ``query`` is searched in the cross-lingual space (MiniLM reads English)."""
        return (
            is_non_latin(query)
            and self.index.multilingual is not None
            and self.multilingual_encoder is not None
        )

    def query_vector(self, query: str) -> np.ndarray:
        """The query embedded in the space its dense scores are computed in."""
        encoder = self.multilingual_encoder if self.cross_lingual(query) else self.encoder
        assert encoder is not None
        return encoder.encode([query])[0]

    def search(self, query: str, options: RetrievalOptions, vector: np.ndarray | None = None) -> list[Hit]:
        """The ``options.k`` best chunks for ``query``.

        Each enabled retriever returns ``options.candidates`` chunks; reciprocal rank fusion
        merges the lists. With ``rerank``, every fused candidate is then rescored by a convex
        combination of its exact dense cosine and its BM25 score (normalised by the best),
        which uses the scores' size, not just their order (Bruch et al., 2023).
        """
        cross_lingual = self.cross_lingual(query)
        vectors = self.index.multilingual if cross_lingual else self.index.dense
        if vector is None and (options.dense or options.rerank):
            vector = self.query_vector(query)
        ranked: dict[str, list[tuple[int, float]]] = {}
        if options.dense:
            assert vector is not None
            search = self.index.search_multilingual if cross_lingual else self.index.search_dense
            ranked["multilingual" if cross_lingual else "dense"] = search(vector, options.candidates)
        if options.lexical:
            ranked["lexical"] = self.index.search_lexical(query_terms(query), options.candidates)

        fused: dict[int, float] = {}
        ranks: dict[int, dict[str, int]] = {}
        for name, results in ranked.items():
            for rank, (chunk_id, _) in enumerate(results, start=1):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
                ranks.setdefault(chunk_id, {})[name] = rank
        pool = sorted(fused, key=lambda chunk_id: -fused[chunk_id])
        dense_scores: dict[int, float] = {}
        if vector is not None and vectors is not None:
            exact = self.index.dense_scores(vector, pool, multilingual=cross_lingual)
            dense_scores = dict(zip(pool, exact.tolist(), strict=True))
        scores = fused
        if options.rerank and dense_scores and not cross_lingual:
            lexical = dict(ranked.get("lexical", []))
            top = max(lexical.values(), default=0.0) or 1.0
            weight = options.dense_weight if options.dense or options.lexical else 1.0
            scores = {i: weight * dense_scores[i] + (1 - weight) * lexical.get(i, 0.0) / top for i in pool}
            pool.sort(key=lambda chunk_id: -scores[chunk_id])
        if options.cross_encoder is not None and pool:
            head = pool[: options.cross_encoder_candidates]
            texts = self.index.chunks(head)
            judged = shared_reranker(options.cross_encoder).scores(query, [texts[i].chunk.text for i in head])
            scores = {**scores, **{i: float(s) for i, s in zip(head, judged, strict=True)}}
            pool[: len(head)] = sorted(head, key=lambda chunk_id: -scores[chunk_id])
        best = pool[: options.k]
        stored = self.index.chunks(best)
        return [
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
