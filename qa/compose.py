"""Hits → an extractive, cited ``Answer``, or an abstention with the closest passages.

Every answer sentence is copied verbatim from a source and is the excerpt of its own
citation, so the answer cannot state anything its citations do not cover. The ``Answer``
is structure (citations in order, a short answer or a conflict between sources); its text
is rendered from that (``Answer.text``), never parsed back.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from qa.chunking import split_sentences
from qa.config import Thresholds
from qa.records import Answer, Citation, CitedValue, Hit
from qa.text import stems

# Cosine of sentence embeddings to the question, one per sentence.
SentenceSimilarity = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class _Sentence:
    hit: Hit
    start: int  # offsets into the document's cleaned text
    end: int
    text: str


@dataclass(frozen=True)
class _AnswerType:
    """What kind of thing a question asks for, and how such a thing looks in a sentence
    (the ``value`` group is the thing itself)."""

    name: str
    asks: re.Pattern[str]
    value: re.Pattern[str]


_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?"
_NUMBER_WORDS = r"one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|hundred|thousand"
_ANSWER_TYPES = [
    _AnswerType(
        "place",
        re.compile(r"^\s*where\b|어디|어느 곳", re.I),
        re.compile(r"\b(?:in|at|near|from) (?:the )?(?P<value>[A-Z][\w'’.-]+(?: [A-Z][\w'’.-]+)*)"),
    ),
    _AnswerType(
        "time",
        re.compile(r"^\s*when\b|\bwhat (?:year|date|month|day)\b|\bin which year\b|언제|몇 년", re.I),
        re.compile(
            rf"(?P<value>\b{_MONTH} \d{{1,2}}(?!\d)(?:[-–]\d{{1,2}})?(?:, (?:1[5-9]|20)\d\d)?|\b{_MONTH} (?:1[5-9]|20)\d\d"
            r"|\b(?:1[5-9]|20)\d\d\b)"
        ),
    ),
    _AnswerType(
        "quantity",
        re.compile(r"^\s*how (?:many|much|long|old|far)\b|몇|얼마", re.I),
        re.compile(
            rf"(?P<value>\b(?:\d[\d,.]*|{_NUMBER_WORDS})(?: (?:million|billion|thousand|percent|per cent))?(?: [a-z]{{3,}})?)\b",
            re.I,
        ),
    ),
    _AnswerType(
        "person",
        re.compile(r"^\s*who(?:m|se)?\b|누구|누가", re.I),
        re.compile(r"(?P<value>\b[A-Z][a-z]+(?:[ -][A-Z][a-z]+)+)"),
    ),
]


def _answer_type(question: str) -> _AnswerType | None:
    return next((kind for kind in _ANSWER_TYPES if kind.asks.search(question)), None)


def _values(kind: _AnswerType, sentence: str, question: str) -> list[str]:
    """The values of ``kind`` in ``sentence`` that the question does not already name."""
    asked = question.casefold()
    found = [m.group("value").strip(" ,.") for m in kind.value.finditer(sentence)]
    return list(dict.fromkeys(v for v in found if v and v.casefold() not in asked))


# "Which office ...", "What news agency ...": the noun phrase the answer is an instance of.
_FOCUS = re.compile(
    r"\b(?:which|what)\s+((?:[a-z]+\s+){0,2}?[a-z]+)\s+(?:of|did|does|do|is|are|was|were|has|have|had|in|on|for|that|to)\b",
    re.I,
)
_AUXILIARIES = {
    "is",
    "are",
    "was",
    "were",
    "did",
    "does",
    "do",
    "has",
    "have",
    "had",
    "can",
    "could",
    "will",
    "would",
}


def _focus_stems(question: str) -> set[str]:
    match = _FOCUS.search(question)
    if match is None or match.group(1).split()[0].lower() in _AUXILIARIES:
        return set()
    return set(stems(match.group(1)))


@dataclass(frozen=True)
class _QuestionProfile:
    stems: list[str]
    weights: dict[str, float]
    bigrams: set[tuple[str, str]]
    focus: set[str]
    answer_type: _AnswerType | None


def _profile(question: str, sentences: Sequence[_Sentence]) -> _QuestionProfile:
    asked = list(dict.fromkeys(stems(question)))
    sentence_stems = [set(stems(s.text)) for s in sentences]
    weights = {}
    for stem in asked:
        # Words found in few candidate sentences discriminate more: a local idf.
        frequency = sum(1 for present in sentence_stems if stem in present)
        weights[stem] = math.log(1 + len(sentences) / (1 + frequency)) + 0.1
    answer_type = _answer_type(question)
    return _QuestionProfile(
        asked, weights, set(itertools.pairwise(asked)), _focus_stems(question) & set(asked), answer_type
    )


def _lexical_score(profile: _QuestionProfile, sentence: _Sentence) -> float:
    """About 0..1.7: the weighted share of question words present (words only in the
    document's title count half: the title is every sentence's context), the share of
    question word pairs kept adjacent, and bonuses when the sentence has the focus noun
    ("which *office*") or text of the expected answer type (a place for "where")."""
    if not profile.stems:
        return 0.0
    words = stems(sentence.text)
    own = set(words) & set(profile.stems)
    from_title = (set(stems(sentence.hit.title)) & set(profile.stems)) - own
    coverage = (
        sum(profile.weights[s] for s in own) + 0.5 * sum(profile.weights[s] for s in from_title)
    ) / sum(profile.weights.values())
    pairs = set(itertools.pairwise(words)) & profile.bigrams
    adjacency = len(pairs) / len(profile.bigrams) if profile.bigrams else 0.0
    focus = 0.2 if profile.focus and profile.focus <= own else 0.0
    typed = (
        0.2 if profile.answer_type is not None and profile.answer_type.value.search(sentence.text) else 0.0
    )
    return coverage + 0.3 * adjacency + focus + typed


_FRAGMENT_PENALTY = 0.1


def _is_fragment(text: str) -> bool:
    """Captions, bylines and headings: no sentence punctuation at the end."""
    return not re.search(r"[.!?。\"”’)]$", text)


def _best_part_similarity(sentences: Sequence[_Sentence], similarity: SentenceSimilarity) -> np.ndarray:
    """Each sentence's best cosine over itself and its clauses.

    A long sentence's embedding blurs the part that matters; across languages there is no
    word overlap to make up for it, so the clause that matches best speaks for the sentence.
    """
    texts: list[str] = []
    owner: list[int] = []
    for i, sentence in enumerate(sentences):
        clauses = [c.strip() for c in re.split(r"[,;:—]", sentence.text) if len(c.split()) >= 3]
        parts = [sentence.text, *clauses] if len(clauses) > 1 else [sentence.text]
        texts.extend(parts)
        owner.extend([i] * len(parts))
    cosines = similarity(texts)
    best = np.full(len(sentences), -1.0)
    np.maximum.at(best, owner, cosines)
    return best


def candidate_sentences(hits: Sequence[Hit]) -> list[_Sentence]:
    """The sentences of the hits, each once (chunks overlap), titles left out."""
    seen: set[tuple[str, int]] = set()
    sentences = []
    for hit in hits:
        chunk = hit.chunk
        for start, end in split_sentences(chunk.text):
            key = (chunk.source, chunk.start + start)
            text = chunk.text[start:end]
            if key not in seen and text != hit.title:
                seen.add(key)
                sentences.append(_Sentence(hit, chunk.start + start, chunk.start + end, text))
    return sentences


def compose_answer(
    question: str,
    hits: Sequence[Hit],
    similarity: SentenceSimilarity,
    *,
    cross_lingual: bool = False,
    thresholds: Thresholds | None = None,
    max_sentences: int = 2,
    sentences_to_embed: int = 16,
) -> Answer:
    """Pick the best-supported sentences, or abstain when the evidence is weak.

    A sentence's score is its embedding similarity to the question plus a lexical score
    (question words present, rarer and focus words weighing more; word pairs kept; the
    expected answer type present) and a small prior for the rank of its chunk. Only the
    ``sentences_to_embed`` best by the cheap scores are embedded.
    """
    thresholds = Thresholds() if thresholds is None else thresholds
    sentences = candidate_sentences(hits)
    if not sentences:
        return _abstain(question, hits)
    profile = _profile(question, sentences)
    rank_of = {hit.chunk_id: rank for rank, hit in enumerate(hits)}
    lexical = [_lexical_score(profile, s) for s in sentences]
    cheap = [
        0.5 * lexical[i] + 0.1 / (1 + rank_of[s.hit.chunk_id]) - _FRAGMENT_PENALTY * _is_fragment(s.text)
        for i, s in enumerate(sentences)
    ]
    shortlist = sorted(range(len(sentences)), key=lambda i: -cheap[i])[:sentences_to_embed]
    sentences = [sentences[i] for i in shortlist]
    lexical = [lexical[i] for i in shortlist]
    cheap = [cheap[i] for i in shortlist]
    cosines = (
        _best_part_similarity(sentences, similarity)
        if cross_lingual
        else similarity([s.text for s in sentences])
    )
    scores = [float(cosines[i]) + cheap[i] for i in range(len(sentences))]
    order = sorted(range(len(sentences)), key=lambda i: -scores[i])
    best = order[0]

    coverage = lexical[best]
    needed = thresholds.cross_lingual_similarity if cross_lingual else thresholds.similarity
    evidence = {"similarity": round(float(cosines[best]), 4), "coverage": round(coverage, 4)}
    if cosines[best] < needed and (cross_lingual or coverage < thresholds.coverage):
        return _abstain(question, hits, evidence)

    chosen = [best]
    for i in order[1:]:
        if len(chosen) >= max_sentences or scores[i] < 0.9 * scores[best]:
            break
        chosen.append(i)
    kind = profile.answer_type
    rival = None if kind is None else _disagreement(kind, question, sentences, order, scores)
    if rival is not None:
        chosen = [best, rival]
    values = {i: _values(kind, sentences[i].text, question) for i in chosen} if kind is not None else {}
    # A short answer comes first, only when the best sentence holds exactly one candidate.
    short = rival is None and len(values.get(best, [])) == 1
    if not short and len({sentences[i].hit.chunk.source for i in chosen}) == 1:
        chosen.sort(key=lambda i: sentences[i].start)  # one document: keep its reading order
    citations = [_cite(sentences[i], scores[i]) for i in chosen]

    def cited_value(i: int) -> CitedValue:  # the value that sentence ``i`` gives
        return CitedValue(values[i][0], chosen.index(i) + 1)

    return Answer(
        question=question,
        citations=citations,
        abstained=False,
        short_answer=cited_value(best) if short else None,
        conflict=(cited_value(best), cited_value(rival)) if rival is not None else (),
        evidence=evidence,
    )


def _disagreement(
    kind: _AnswerType, question: str, sentences: Sequence[_Sentence], order: list[int], scores: list[float]
) -> int | None:
    """A well-supported sentence from another document that gives a different date or
    number than the best one, or None. Only dates and numbers are compared: two names for
    one place are not a conflict, two years for one event are."""
    if kind.name not in ("time", "quantity"):
        return None
    best = order[0]

    def numbers(i: int) -> set[str]:
        return {re.sub(r"\D", "", v) or v.casefold() for v in _values(kind, sentences[i].text, question)}

    mine = numbers(best)
    for i in order[1:]:
        if scores[i] < 0.8 * scores[best]:
            break
        theirs = numbers(i)
        if (
            sentences[i].hit.chunk.source != sentences[best].hit.chunk.source
            and mine
            and theirs
            and not mine & theirs
        ):
            return i
    return None


def _cite(sentence: _Sentence, score: float) -> Citation:
    hit = sentence.hit
    return Citation(
        hit.chunk.source, hit.title, sentence.text, sentence.start, sentence.end, round(score, 4), hit.date
    )


def _abstain(question: str, hits: Sequence[Hit], evidence: dict[str, float] | None = None) -> Answer:
    citations = [
        Citation(h.chunk.source, h.title, h.chunk.text, h.chunk.start, h.chunk.end, round(h.score, 4), h.date)
        for h in hits[:3]
    ]
    return Answer(question=question, citations=citations, abstained=True, evidence=evidence or {})
