"""Wires the question's stages: question → conversation → retrieve → rerank → compose.
One ``Engine`` per index folder."""

from __future__ import annotations

import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from qa.compose import CorpusIdf, Ranking, SentenceSimilarity, compose_answer, rank_units
from qa.config import RetrievalOptions, Settings, Thresholds
from qa.conversation import resolve
from qa.embed import Encoder, shared_encoder
from qa.errors import QuestionError
from qa.records import Answer, Hit
from qa.retrieve import Query, Retriever
from qa.store import Index, open_index
from qa.summary import is_summary_request, summarise, summary_topic

MAX_QUESTION_CHARS = 2000
SUMMARY_DOCUMENTS = 5  # documents a summary draws from at most
SENTENCE_CACHE_SIZE = 50_000  # about 80 MB of 384-d vectors
# C0 and C1 control characters, and lone surrogates (undecodable bytes of a command line
# argument): they cannot be searched for, and the chunk store's UTF-8 cannot hold the latter.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_question(question: str) -> str:
    """Strip control characters and spare whitespace; reject what cannot be a question.

    Raises ``QuestionError`` for an empty question, one without a letter or digit, and one
    longer than ``MAX_QUESTION_CHARS``. Anything else is a question, whatever it asks: an
    instruction to the system ("ignore previous instructions...") is searched for like any
    text, and at worst the answer abstains.
    """
    if not isinstance(question, str):
        raise QuestionError(f"The question must be text, not {type(question).__name__}.")
    text = " ".join(_CONTROL.sub(" ", question).split())
    if not text:
        raise QuestionError("The question is empty. Type a question about your documents.")
    if len(text) > MAX_QUESTION_CHARS:
        raise QuestionError(
            f"The question is {len(text):,} characters long; keep it under {MAX_QUESTION_CHARS:,}."
        )
    if not any(c.isalnum() for c in text):
        raise QuestionError(
            "The question is empty: it has no letters or digits. Type a question about your documents."
        )
    return text


class Engine:
    """Answers questions from one index folder, reopening it when a rebuild commits.

    Construction loads nothing: the index opens and the models load on first use. Encoders
    follow the index manifest, so an index built with a custom model is queried with it;
    ``encoders`` are used instead of loading the models of the same names (a test's fake
    encoder, a model already loaded elsewhere).
    """

    def __init__(
        self,
        index_dir: str | os.PathLike[str] = "index",
        *,
        encoders: Sequence[Encoder] | None = None,
        settings: Settings | None = None,
        thresholds: Thresholds | None = None,
    ) -> None:
        self.index_dir = Path(index_dir)
        self.encoders = {e.name: e for e in encoders or ()}
        self.settings = Settings() if settings is None else settings
        self.thresholds = thresholds
        self._explicit_settings = settings is not None
        self._lock = threading.Lock()
        self._index: Index | None = None
        self._sentence_cache: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def index(self) -> Index:
        """The live index; a finished rebuild is picked up here, without a restart."""
        with self._lock:
            if self._index is None or self._index.is_stale():
                self._index = open_index(
                    self.index_dir, settings=self.settings if self._explicit_settings else None
                )
            return self._index

    def warm_up(self) -> None:
        """Open the index and load every model it needs, so the first question is fast."""
        retriever = self._retriever(self.index())
        for encoder in (retriever.encoder, retriever.multilingual_encoder):
            if encoder is not None:
                encoder.encode(["warm up"])

    def _sentence_vectors(self, encoder: Encoder, sentences: Sequence[str]) -> np.ndarray:
        """Embed sentences, remembering recent ones: the passages that answer questions
        recur, and embedding them is most of an answer's time."""
        with self._lock:
            missing = list(
                dict.fromkeys(s for s in sentences if (encoder.name, s) not in self._sentence_cache)
            )
        fresh = encoder.encode(missing) if missing else np.empty((0, encoder.dimension), np.float32)
        with self._lock:
            for text, vector in zip(missing, fresh, strict=True):
                self._sentence_cache[(encoder.name, text)] = vector
            vectors = []
            for text in sentences:
                self._sentence_cache.move_to_end((encoder.name, text))
                vectors.append(self._sentence_cache[(encoder.name, text)])
            while len(self._sentence_cache) > SENTENCE_CACHE_SIZE:
                self._sentence_cache.popitem(last=False)
        return np.vstack(vectors)

    def _encoder(self, model: str) -> Encoder:
        return self.encoders[model] if model in self.encoders else shared_encoder(model)

    def _retriever(self, index: Index) -> Retriever:
        multilingual = index.manifest.multilingual
        return Retriever(
            index,
            self._encoder(index.manifest.dense.model),
            self._encoder(multilingual.model) if multilingual else None,
        )

    def retriever(self) -> Retriever:
        """A retriever over the live index, with the encoders it was built with."""
        return self._retriever(self.index())

    def _options(self, k: int | None, retrieval: RetrievalOptions | None) -> RetrievalOptions:
        options = self.settings.retrieval if retrieval is None else retrieval
        return options if k is None else replace(options, k=k)

    def search(
        self, query: str, *, k: int | None = None, retrieval: RetrievalOptions | None = None
    ) -> list[Hit]:
        """The best passages for ``query``: dense and lexical lists, fused and reranked."""
        return self.retriever().search(clean_question(query), self._options(k, retrieval))

    def _retrieve(
        self, text: str, k: int | None, retrieval: RetrievalOptions | None
    ) -> tuple[Index, Query, list[Hit], SentenceSimilarity, CorpusIdf]:
        """The hits for ``text`` and the functions that judge units against it, all from
        one index generation (even if a build commits meanwhile)."""
        index = self.index()
        retriever = self._retriever(index)
        query = retriever.query(text)
        hits = retriever.search(query, self._options(k, retrieval))

        def similarity(sentences: Sequence[str]) -> np.ndarray:
            return self._sentence_vectors(query.encoder, sentences) @ query.embed()

        def corpus_idf(word: str) -> float:
            return index.lexical_idf([word])

        return index, query, hits, similarity, corpus_idf

    def _summary_hits(self, request: str) -> tuple[Index, list[Hit]]:
        """The passages a summary is drawn from: those found for the request's topic, or,
        when it asks about the documents as a whole, the opening passage of each of the
        first documents."""
        topic = summary_topic(request)
        if topic:
            index, _, hits, _, _ = self._retrieve(topic, max(12, self.settings.retrieval.k), None)
            return index, hits
        index = self.index()
        openings = []
        for document in index.documents()[:SUMMARY_DOCUMENTS]:
            chunks = index.document_chunks(document.source)
            if chunks:
                stored = chunks[0]
                openings.append(Hit(stored.id, stored.chunk, stored.title, stored.date, 0.0))
        return index, openings

    def ranking(self, question: str) -> Ranking | None:
        """The ranked answer units for ``question`` with the evidence the answerability
        model weighs (what ``answer`` decides from; the training script learns on it)."""
        text = clean_question(question)
        _, query, hits, similarity, corpus_idf = self._retrieve(text, None, None)
        return rank_units(text, hits, similarity, cross_lingual=query.cross_lingual, corpus_idf=corpus_idf)

    def answer(
        self,
        question: str,
        *,
        history: Sequence[Answer] = (),
        k: int | None = None,
        retrieval: RetrievalOptions | None = None,
    ) -> Answer:
        """A cited extractive answer, or an abstention that cites the closest passages.

        ``history`` holds the conversation's earlier answers, oldest first: a question that
        refers back to them ("Who represented South Korea there?") is searched with their
        context (``Answer.query`` says what was searched). ``retrieval`` replaces the
        engine's retrieval options for this question; ``k`` replaces just the number of
        passages."""
        started = time.perf_counter()
        text = resolve(clean_question(question), history)
        if is_summary_request(text):
            index, hits = self._summary_hits(text)
            searched = time.perf_counter()
            result = summarise(text, hits, documents=SUMMARY_DOCUMENTS)
        else:
            index, query, hits, similarity, corpus_idf = self._retrieve(text, k, retrieval)
            searched = time.perf_counter()
            result = compose_answer(
                text,
                hits,
                similarity,
                cross_lingual=query.cross_lingual,
                thresholds=self.thresholds,
                corpus_idf=corpus_idf,
                max_sentences=self.settings.max_answer_sentences,
            )
        done = time.perf_counter()
        return replace(
            result,
            question=question,  # as the user gave it; ``query`` is what was searched
            query=text,
            citations=index.locate(result.citations),
            generation=index.path.name,
            timings_ms={
                "retrieve": round(1000 * (searched - started), 1),
                "compose": round(1000 * (done - searched), 1),
                "total": round(1000 * (done - started), 1),
            },
        )


_engines: dict[Path, Engine] = {}
_engines_lock = threading.Lock()


def engine_for(index_dir: str | os.PathLike[str] = "index") -> Engine:
    """The shared engine of ``index_dir`` (models load once per process)."""
    key = Path(index_dir).resolve()
    with _engines_lock:
        if key not in _engines:
            _engines[key] = Engine(key)
        return _engines[key]


def answer(
    question: str,
    *,
    history: Sequence[Answer] = (),
    index_dir: str | os.PathLike[str] = "index",
    k: int | None = None,
) -> Answer:
    """Answer ``question`` from the index in ``index_dir``, with citations; ``history``
    holds the conversation's earlier answers, so that a follow-up can refer back to them.

    >>> from qa import answer
    >>> first = answer("Where was the NATO Defense Ministers' Meeting held?")  # doctest: +SKIP
    >>> first.text, [c.source for c in first.citations]  # doctest: +SKIP
    >>> answer("Who represented South Korea there?", history=[first]).query  # doctest: +SKIP
    """
    return engine_for(index_dir).answer(question, history=history, k=k)
