"""Hits → an extractive, cited ``Answer``, or an abstention with the closest passages.

Candidates are answer units (``qa.answer_units``): sentences, joined with a neighbour when
they cannot stand alone; headings, bullets and fragments never. They are ranked by their
embedding similarity to the question plus a lexical score; whether the best one answers
at all is the learned answerability model's call (``qa.answerability``). Every answer
sentence is copied verbatim from a source and is the excerpt of its own citation. The
``Answer`` is structure (citations in order, a short answer or a conflict between
sources); its text is rendered from that (``Answer.text``), never parsed back.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from qa.answer_types import AnswerType, answer_type, values
from qa.answer_units import build_units, refers_back
from qa.answerability import AnswerabilityModel, UnitEvidence, shipped_model
from qa.chunking import split_sentences
from qa.config import Thresholds
from qa.records import Answer, Citation, CitedValue, Hit
from qa.text import stems

# Cosine of texts' embeddings to the question, one per text.
SentenceSimilarity = Callable[[Sequence[str]], np.ndarray]
# The corpus idf of a question word, 0 when no chunk holds it.
CorpusIdf = Callable[[str], float]


@dataclass(frozen=True)
class Unit:
    """A candidate answer: ``text`` is the document's cleaned text at ``start:end``."""

    hit: Hit
    rank: int  # of its hit among the retrieved
    start: int
    end: int
    text: str


def candidate_units(hits: Sequence[Hit]) -> list[Unit]:
    """The answer units of the hits, each span once (chunks overlap), titles left out. A
    passage with no unit at all (text without sentence punctuation) gives its sentences,
    so that such a corpus is still answerable."""
    seen: set[tuple[str, int, int]] = set()
    found = []
    for rank, hit in enumerate(hits):
        chunk = hit.chunk
        spans = [(u.start, u.end, u.first) for u in build_units(chunk.text)] or [
            (s, e, n) for n, (s, e) in enumerate(split_sentences(chunk.text))
        ]
        for start, end, first in spans:
            text = chunk.text[start:end]
            key = (chunk.source, chunk.start + start, chunk.start + end)
            if key in seen or text == hit.title:
                continue
            if first == 0 and chunk.ordinal > 0 and refers_back(text):
                continue  # its antecedent is in the chunk before, which overlaps this one
            seen.add(key)
            found.append(Unit(hit, rank, chunk.start + start, chunk.start + end, text))
    return found


# "Which office ...", "What news agency ...": the noun phrase the answer is an instance of.
_FOCUS = re.compile(
    r"\b(?:which|what)\s+((?:[a-z]+\s+){0,2}?[a-z]+)\s+(?:of|did|does|do|is|are|was|were|has|have|had|in|on|for|that|to)\b",
    re.I,
)
_AUXILIARIES = frozenset("is are was were did does do has have had can could will would".split())  # noqa: SIM905


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
    answer_type: AnswerType | None


def _profile(question: str, units: Sequence[Unit]) -> _QuestionProfile:
    asked = list(dict.fromkeys(stems(question)))
    unit_stems = [set(stems(u.text)) for u in units]
    weights = {}
    for stem in asked:
        # Words found in few candidate units discriminate more: a local idf.
        frequency = sum(1 for present in unit_stems if stem in present)
        weights[stem] = math.log(1 + len(units) / (1 + frequency)) + 0.1
    return _QuestionProfile(
        asked,
        weights,
        set(itertools.pairwise(asked)),
        _focus_stems(question) & set(asked),
        answer_type(question),
    )


def _coverage(profile: _QuestionProfile, present: set[str]) -> float:
    total = sum(profile.weights.values())
    return sum(w for s, w in profile.weights.items() if s in present) / total if total else 0.0


def _has_value(kind: AnswerType | None, text: str, question: str) -> bool:
    return kind is not None and bool(values(kind, text, question))


def _lexical_score(profile: _QuestionProfile, unit: Unit, typed: bool) -> float:
    """About 0..1.7: the weighted share of question words present (words only in the
    document's title count half: the title is every sentence's context), the share of
    question word pairs kept adjacent, and bonuses when the unit has the focus noun
    ("which *office*") or, ``typed``, a value of the asked type (a place for "where")."""
    if not profile.stems:
        return 0.0
    words = stems(unit.text)
    own = set(words) & set(profile.stems)
    from_title = (set(stems(unit.hit.title)) & set(profile.stems)) - own
    coverage = _coverage(profile, own) + 0.5 * _coverage(profile, from_title)
    pairs = set(itertools.pairwise(words)) & profile.bigrams
    adjacency = len(pairs) / len(profile.bigrams) if profile.bigrams else 0.0
    focus = 0.2 if profile.focus and profile.focus <= own else 0.0
    return coverage + 0.3 * adjacency + focus + (0.2 if typed else 0.0)


def _best_part_similarity(units: Sequence[Unit], similarity: SentenceSimilarity) -> np.ndarray:
    """Each unit's best cosine over itself, its sentences and its clauses.

    A long sentence's embedding blurs the part that matters; across languages there is no
    word overlap to make up for it, so the clause that matches best speaks for the unit.
    """
    texts: list[str] = []
    owner: list[int] = []
    for i, unit in enumerate(units):
        sentences = [unit.text[s:e] for s, e in split_sentences(unit.text)]  # a joined unit has several
        clauses = [c.strip() for c in re.split(r"[,;:—\n]", unit.text) if len(c.split()) >= 3]
        parts = list(dict.fromkeys([unit.text, *sentences, *(clauses if len(clauses) > 1 else [])]))
        texts.extend(parts)
        owner.extend([i] * len(parts))
    cosines = similarity(texts)
    best = np.full(len(units), -1.0)
    np.maximum.at(best, owner, cosines)
    return best


@dataclass(frozen=True)
class Ranking:
    """The shortlisted units in score order; ``evidence(i)`` describes unit ``i`` for the
    answerability model (computed when asked: an answer needs it for one or two units)."""

    question: str
    units: list[Unit]
    scores: list[float]
    answer_type: AnswerType | None
    cross_lingual: bool
    describe: Callable[[int], UnitEvidence]
    _described: dict[int, UnitEvidence] = field(default_factory=dict, repr=False)

    def evidence(self, i: int) -> UnitEvidence:
        if i not in self._described:
            self._described[i] = self.describe(i)
        return self._described[i]


def rank_units(
    question: str,
    hits: Sequence[Hit],
    similarity: SentenceSimilarity,
    *,
    cross_lingual: bool = False,
    corpus_idf: CorpusIdf | None = None,
    units_to_embed: int = 16,
) -> Ranking | None:
    """The candidate units of ``hits`` ranked for ``question``, or ``None`` without any.

    A unit's score is its embedding similarity to the question plus half its lexical score
    and a small prior for the rank of its passage. Only the ``units_to_embed`` best by the
    cheap scores are embedded.
    """
    units = candidate_units(hits)
    if not units:
        return None
    profile = _profile(question, units)
    typed = [_has_value(profile.answer_type, u.text, question) for u in units]
    lexical = [_lexical_score(profile, u, typed[i]) for i, u in enumerate(units)]
    cheap = [0.5 * lexical[i] + 0.1 / (1 + u.rank) for i, u in enumerate(units)]
    shortlist = sorted(range(len(units)), key=lambda i: -cheap[i])[:units_to_embed]
    units = [units[i] for i in shortlist]
    typed = [typed[i] for i in shortlist]
    lexical = [lexical[i] for i in shortlist]
    cosines = (
        _best_part_similarity(units, similarity) if cross_lingual else similarity([u.text for u in units])
    )
    scores = [float(cosines[i]) + 0.5 * lexical[i] + 0.1 / (1 + u.rank) for i, u in enumerate(units)]
    order = sorted(range(len(units)), key=lambda i: -scores[i])
    ranked = [units[i] for i in order]
    ranked_scores = [scores[i] for i in order]

    def describe(n: int) -> UnitEvidence:
        i = order[n]
        return UnitEvidence.of(
            question,
            units[i].text,
            passage=units[i].hit.chunk.text,
            title=units[i].hit.title,
            cosine=float(cosines[i]),
            lexical=lexical[i],
            coverage=_coverage(profile, set(stems(units[i].text))),
            score_gap=ranked_scores[0] - scores[i],
            runner_up_gap=ranked_scores[0] - ranked_scores[1] if len(order) > 1 else 1.0,
            passage_rank=units[i].rank,
            has_typed_value=typed[i],
            asks_typed=profile.answer_type is not None and profile.answer_type.value is not None,
            corpus_idf=corpus_idf,
        )

    return Ranking(question, ranked, ranked_scores, profile.answer_type, cross_lingual, describe)


def compose_answer(
    question: str,
    hits: Sequence[Hit],
    similarity: SentenceSimilarity,
    *,
    cross_lingual: bool = False,
    thresholds: Thresholds | None = None,
    corpus_idf: CorpusIdf | None = None,
    model: AnswerabilityModel | None = None,
    max_sentences: int = 2,
) -> Answer:
    """The best-ranked unit (and a close second), or an abstention when the answerability
    model's probability that it answers is below the threshold."""
    thresholds = Thresholds() if thresholds is None else thresholds
    model = shipped_model() if model is None else model
    ranking = rank_units(question, hits, similarity, cross_lingual=cross_lingual, corpus_idf=corpus_idf)
    if ranking is None:
        return _abstain(question, hits)
    best = ranking.evidence(0)
    probability = model.probability(best, cross_lingual=cross_lingual)
    needed = thresholds.cross_lingual if cross_lingual else thresholds.answer
    if needed is None:
        needed = model.cross_lingual_threshold if cross_lingual else model.threshold
    evidence = {
        "answer_probability": round(probability, 4),
        "similarity": round(best.cosine, 4),
        "coverage": round(best.coverage, 4),
    }
    if probability < needed:
        return _abstain(question, hits, evidence)

    units, scores = ranking.units, ranking.scores
    chosen = [0]
    for i in range(1, len(units)):
        if len(chosen) >= max_sentences or scores[i] < 0.9 * scores[0]:
            break
        if not _overlaps(units[i], units[chosen[-1]]):
            chosen.append(i)
    kind = ranking.answer_type
    rival = _disagreement(ranking, model, needed)
    if rival is not None:
        chosen = [0, rival]
    found = {i: _value_texts(kind, units[i].text, question) for i in chosen}
    # A short answer comes first, only when the best unit holds exactly one candidate.
    short = rival is None and len(found[0]) == 1
    if not short and len({units[i].hit.chunk.source for i in chosen}) == 1:
        chosen.sort(key=lambda i: units[i].start)  # one document: keep its reading order
    citations = [_cite(units[i], scores[i]) for i in chosen]

    def cited_value(i: int) -> CitedValue:  # the value that unit ``i`` gives
        return CitedValue(found[i][0], chosen.index(i) + 1)

    return Answer(
        question=question,
        citations=citations,
        abstained=False,
        short_answer=cited_value(0) if short else None,
        conflict=(cited_value(0), cited_value(rival)) if rival is not None else (),
        evidence=evidence,
    )


def _overlaps(a: Unit, b: Unit) -> bool:
    return a.hit.chunk.source == b.hit.chunk.source and a.start < b.end and b.start < a.end


def _value_texts(kind: AnswerType | None, text: str, question: str) -> list[str]:
    return [] if kind is None else [text[s:e] for s, e in values(kind, text, question)]


def _disagreement(ranking: Ranking, model: AnswerabilityModel, needed: float) -> int | None:
    """A unit from another document that itself answers the question (its probability is
    above the threshold too) with a different date or number of the asked type than the
    best unit; or None. Only dates and numbers are compared, and only when the question
    asks for one: two names for one place are not a conflict, two years for one event are."""
    kind = ranking.answer_type
    if kind is None or kind.name not in ("time", "quantity"):
        return None
    units, question = ranking.units, ranking.question

    def numbers(i: int) -> set[str]:
        return {re.sub(r"\D", "", v) or v.casefold() for v in _value_texts(kind, units[i].text, question)}

    mine = numbers(0)
    if not mine:
        return None
    for i in range(1, len(units)):
        if ranking.scores[i] < 0.8 * ranking.scores[0]:
            break
        theirs = numbers(i)
        if (
            units[i].hit.chunk.source != units[0].hit.chunk.source
            and theirs
            and not mine & theirs
            and model.probability(ranking.evidence(i), cross_lingual=ranking.cross_lingual) >= needed
        ):
            return i
    return None


def _cite(unit: Unit, score: float) -> Citation:
    hit = unit.hit
    return Citation(hit.chunk.source, hit.title, unit.text, unit.start, unit.end, round(score, 4), hit.date)


def _abstain(question: str, hits: Sequence[Hit], evidence: dict[str, float] | None = None) -> Answer:
    citations = [
        Citation(h.chunk.source, h.title, h.chunk.text, h.chunk.start, h.chunk.end, round(h.score, 4), h.date)
        for h in hits[:3]
    ]
    return Answer(question=question, citations=citations, abstained=True, evidence=evidence or {})
