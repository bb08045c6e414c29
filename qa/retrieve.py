"""Candidate retrieval: dense, lexical and cross-lingual lists fused by reciprocal rank."""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from qa.embed import Encoder
from qa.records import Hit
from qa.store import Index

RRF_K = 60  # the constant from Cormack et al. (2009); damps the weight of the very top ranks

STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "being",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "s",
        "such",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "about",
        "after",
        "also",
        "any",
        "did",
        "between",
        "during",
        "over",
        "under",
        "up",
        "than",
        "so",
        "not",
        "no",
        "nor",
        "our",
        "we",
        "he",
        "she",
        "his",
        "her",
    ]
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

    def search(
        self, query: str, *, k: int, candidates: int, dense: bool = True, lexical: bool = True
    ) -> tuple[list[Hit], np.ndarray | None]:
        """The ``k`` best chunks, and the query vector that scored their ``dense_score``.

        A question mostly in a non-Latin script is searched in the cross-lingual index
        instead of the English dense one (MiniLM cannot read it); its dense scores are then
        cross-lingual cosines.
        """
        ranked: dict[str, list[tuple[int, float]]] = {}
        vector: np.ndarray | None = None
        scored_in = None
        if dense:
            if (
                is_non_latin(query)
                and self.index.multilingual is not None
                and self.multilingual_encoder is not None
            ):
                vector = self.multilingual_encoder.encode([query])[0]
                ranked["multilingual"] = self.index.search_multilingual(vector, candidates)
                scored_in = self.index.multilingual
            else:
                vector = self.encoder.encode([query])[0]
                ranked["dense"] = self.index.search_dense(vector, candidates)
                scored_in = self.index.dense
        if lexical:
            ranked["lexical"] = self.index.search_lexical(query_terms(query), candidates)

        fused: dict[int, float] = {}
        ranks: dict[int, dict[str, int]] = {}
        for name, results in ranked.items():
            for rank, (chunk_id, _) in enumerate(results, start=1):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (RRF_K + rank)
                ranks.setdefault(chunk_id, {})[name] = rank
        best = sorted(fused, key=lambda chunk_id: -fused[chunk_id])[:k]
        stored = self.index.chunks(best)
        hits = []
        for chunk_id in best:
            dense_score = None
            if scored_in is not None and vector is not None:
                dense_score = float(np.dot(scored_in.reconstruct(chunk_id), vector))
            item = stored[chunk_id]
            hits.append(
                Hit(
                    chunk_id, item.chunk, item.title, item.date, fused[chunk_id], dense_score, ranks[chunk_id]
                )
            )
        return hits, vector
