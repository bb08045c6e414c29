"""The learned answer scorer: P(this unit, in its context, answers the question).

Candidates are the answer units (``qa.answer_units``) of the retrieved passages. Each gets
features — dense cosine of the unit and of its best clause, idf-weighted coverage of the
question's words and how rare the missing ones are, answer-type match, entity and number
overlap, position, neighbours, title, retrieval rank — and a model trained on SQuAD 2.0
(``scripts/train_answer_scorer.py``; data card ``qa/models/answer_scorer.md``) turns them
into a probability. Inference is numpy only; the weights ship inside the package and are
checked against the sha256 the data card states.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from qa.answer_types import TYPE_NAMES, answer_type, values
from qa.answer_units import Unit, build_units, refers_back
from qa.chunking import split_sentences
from qa.errors import QAError
from qa.records import Hit
from qa.text import query_terms, stem

MODEL_DIR = Path(__file__).parent / "models"
MODEL_FILE = MODEL_DIR / "answer_scorer.json"
DATA_CARD = MODEL_DIR / "answer_scorer.md"
SHORTLIST = 16  # units embedded per question, chosen by the cheap lexical score
_CACHE = 50_000  # texts whose words, names and units are remembered (passages recur)

# Cosines of texts to the question, one per text, in the question's embedding space.
Similarity = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class Candidate:
    """An answer unit of one retrieved passage; offsets are into the document's text."""

    hit: Hit
    rank: int  # of the hit in the retrieved list
    start: int
    end: int
    text: str
    sentences: tuple[str, ...]  # the unit's sentences, for the best-part cosine
    before: str  # the neighbouring sentences inside the passage ("" at its edges)
    after: str
    joined: bool
    opens_passage: bool


def candidates(hits: Sequence[Hit]) -> list[Candidate]:
    """The answer units of ``hits``, each span once (chunks overlap; the best rank keeps it)."""
    seen: set[tuple[str, int, int]] = set()
    found = []
    for rank, hit in enumerate(hits):
        chunk = hit.chunk
        spans, units = _units_of(chunk.text)
        for unit in units:
            key = (chunk.source, chunk.start + unit.start, chunk.start + unit.end)
            if key in seen or unit.text == hit.title:
                continue
            if unit.first == 0 and chunk.ordinal > 0 and refers_back(unit.text):
                continue  # its antecedent is in the chunk before, which overlaps this one
            seen.add(key)
            found.append(_candidate(hit, rank, chunk.text, spans, unit))
    return found


@lru_cache(maxsize=_CACHE)
def _units_of(text: str) -> tuple[list[tuple[int, int]], list[Unit]]:
    """A passage's sentences and units; passages recur across questions."""
    return split_sentences(text), build_units(text)


def _candidate(hit: Hit, rank: int, text: str, spans: list[tuple[int, int]], unit: Unit) -> Candidate:
    def sentence(i: int) -> str:
        return text[spans[i][0] : spans[i][1]] if 0 <= i < len(spans) else ""

    return Candidate(
        hit=hit,
        rank=rank,
        start=hit.chunk.start + unit.start,
        end=hit.chunk.start + unit.end,
        text=unit.text,
        sentences=tuple(sentence(i) for i in range(unit.first, unit.last + 1)) if unit.joined else (),
        before=sentence(unit.first - 1),
        after=sentence(unit.last + 1),
        joined=bool(unit.joined),
        opens_passage=unit.first == 0,
    )


# --- words -------------------------------------------------------------------------------

_HANGUL_WORD = re.compile(r"[가-힣]{2,}")


@lru_cache(maxsize=_CACHE)
def terms(text: str) -> frozenset[str]:
    """Stemmed content words; a Korean word also gives its character pairs, so "회의는"
    meets "회의" without a morphological analyser."""
    found: set[str] = set()
    for word in query_terms(text):
        if _HANGUL_WORD.fullmatch(word):
            found.update(word[i : i + 2] for i in range(len(word) - 1))
        else:
            found.add(stem(word))
    return frozenset(found)


@lru_cache(maxsize=_CACHE)
def _ordered_terms(text: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in query_terms(text))


_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_POSSESSIVE = re.compile(r"['’]s?$")


@lru_cache(maxsize=_CACHE)
def _entities(text: str, *, skip_first: bool) -> frozenset[str]:
    """Capitalised words, casefolded, without a possessive ("NATO's" is "nato")."""
    words = [m.group() for m in _CAPITALISED.finditer(text) if not (skip_first and m.start() == 0)]
    names = {_POSSESSIVE.sub("", w).casefold() for w in words}
    return frozenset(names - {"the", "a", "an", "in", "on", "what", "who"})


@lru_cache(maxsize=_CACHE)
def _numbers(text: str) -> frozenset[str]:
    return frozenset(n.replace(",", "") for n in _NUMBER.findall(text))


# --- features ----------------------------------------------------------------------------

FEATURES = (
    "cosine",
    "best_part_cosine",
    "cosine_gap_to_best",
    "cosine_rank",
    "coverage",
    "coverage_with_context",
    "coverage_gap_to_best",
    "title_coverage",
    "rarest_missing",
    "rare_missing_count",
    "adjacent_pairs",
    *(f"asks_{name}" for name in TYPE_NAMES),
    "asks_nothing_typed",
    "typed_values",
    "typed_value_absent",
    "question_numbers_present",
    "question_has_numbers",
    "question_entities_present",
    "question_entities_in_context",
    "new_entities",
    "unit_words",
    "joined",
    "opens_passage",
    "hit_rank",
    "hit_dense_score",
    "hit_score_share",
    "question_words",
    "pool_best_cosine",
    "pool_best_coverage",
)


@dataclass(frozen=True)
class _Question:
    text: str
    stems: list[str]
    weights: dict[str, float]
    pairs: set[tuple[str, str]]
    entities: frozenset[str]
    numbers: frozenset[str]


def _question(question: str, pool: Sequence[Candidate]) -> _Question:
    stems = list(dict.fromkeys(s for s in terms(question)))
    present = [terms(c.text) for c in pool]
    weights = {}
    for word in stems:
        # A local idf: words found in few candidate units discriminate more.
        frequency = sum(1 for p in present if word in p)
        weights[word] = math.log(1 + len(pool) / (1 + frequency)) + 0.1
    ordered = _ordered_terms(question)
    return _Question(
        question,
        stems,
        weights,
        set(itertools.pairwise(ordered)),
        _entities(question, skip_first=True),
        _numbers(question),
    )


def _coverage(q: _Question, present: frozenset[str] | set[str]) -> float:
    total = sum(q.weights.values())
    return sum(w for s, w in q.weights.items() if s in present) / total if total else 0.0


def cheap_scores(question: str, pool: Sequence[Candidate]) -> np.ndarray:
    """A lexical pre-score to choose which units are worth embedding: coverage of the
    question's words (title words count half) and a prior for the passage's rank."""
    q = _question(question, pool)
    scores = []
    for c in pool:
        own = terms(c.text)
        title = terms(c.hit.title) - own
        scores.append(_coverage(q, own) + 0.5 * _coverage(q, title) + 0.2 / (1 + c.rank))
    return np.asarray(scores, dtype=np.float64)


def best_part_cosines(pool: Sequence[Candidate], similarity: Similarity) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's cosine, and its best over itself, its sentences and its clauses (a long
    unit's embedding blurs the part that answers)."""
    texts: list[str] = []
    owner: list[int] = []
    first: list[int] = []  # where each unit's own text is in ``texts``
    for i, c in enumerate(pool):
        first.append(len(texts))
        parts = [c.text, *c.sentences]
        for sentence in c.sentences or (c.text,):
            clauses = [x.strip() for x in re.split(r"[,;:—]", sentence) if len(x.split()) >= 3]
            if len(clauses) > 1:
                parts.extend(clauses)
        unique = list(dict.fromkeys(parts))
        texts.extend(unique)
        owner.extend([i] * len(unique))
    cosines = similarity(texts)
    whole = np.asarray(cosines, dtype=np.float64)[first]
    best = np.full(len(pool), -1.0)
    np.maximum.at(best, owner, cosines)
    return whole, best


def features(
    question: str, pool: Sequence[Candidate], cosine: np.ndarray, best_part: np.ndarray
) -> np.ndarray:
    """One row of ``FEATURES`` per candidate."""
    q = _question(question, pool)
    kind = answer_type(question)
    max_weight = max(q.weights.values(), default=1.0)
    best_hit = max((abs(c.hit.score) for c in pool), default=1.0) or 1.0
    coverage = np.asarray([_coverage(q, terms(c.text)) for c in pool])
    cosine_rank = np.empty(len(pool))
    cosine_rank[np.argsort(-cosine)] = np.arange(len(pool))
    question_words = math.log(1 + len(question.split()))
    rows = []
    for i, c in enumerate(pool):
        own = terms(c.text)
        title = terms(c.hit.title)
        context = own | title | terms(c.before) | terms(c.after)
        missing = [q.weights[s] for s in q.stems if s not in own and s not in title]
        typed = [] if kind is None else values(kind, c.text, question)
        unit_entities = _entities(c.text, skip_first=False)
        context_entities = unit_entities | _entities(f"{c.before} {c.after} {c.hit.title}", skip_first=False)
        ordered = _ordered_terms(c.text)
        pairs = set(itertools.pairwise(ordered))
        rows.append(
            [
                cosine[i],
                best_part[i],
                cosine[i] - cosine.max(),
                1.0 / (1.0 + cosine_rank[i]),
                coverage[i],
                _coverage(q, context),
                coverage[i] - coverage.max(),
                _coverage(q, title),
                max(missing, default=0.0) / max_weight,
                sum(1 for w in missing if w >= 0.5 * max_weight),
                len(pairs & q.pairs) / len(q.pairs) if q.pairs else 0.0,
                *(float(kind is not None and kind.name == name) for name in TYPE_NAMES),
                float(kind is None),
                min(len(typed), 3) / 3,
                float(kind is not None and kind.value is not None and not typed),
                len(q.numbers & _numbers(c.text)) / len(q.numbers) if q.numbers else 0.0,
                float(bool(q.numbers)),
                len(q.entities & unit_entities) / len(q.entities) if q.entities else 0.0,
                len(q.entities & context_entities) / len(q.entities) if q.entities else 0.0,
                math.log1p(len(unit_entities - q.entities)),
                math.log1p(len(c.text.split())),
                float(c.joined),
                float(c.opens_passage),
                1.0 / (1.0 + c.rank),
                c.hit.dense_score if c.hit.dense_score is not None else 0.0,
                c.hit.score / best_hit,
                question_words,
                cosine.max(),
                coverage.max(),
            ]
        )
    return np.asarray(rows, dtype=np.float64).reshape(len(pool), len(FEATURES))


# --- the model ---------------------------------------------------------------------------


class ScorerError(QAError):
    """The shipped answer-scorer weights are missing or altered: reinstall qa, or rerun
    scripts/train_answer_scorer.py and update the data card."""


@dataclass(frozen=True)
class AnswerScorer:
    """A logistic model over standardised ``FEATURES`` (with their pairwise products where
    ``interactions`` lists them), and the thresholds calibrated on held-out articles."""

    mean: np.ndarray
    scale: np.ndarray
    coefficients: np.ndarray
    intercept: float
    interactions: tuple[tuple[int, int], ...]
    threshold: float  # answer when P(best unit answers) reaches it
    cross_lingual_threshold: float
    conflict_probability: float  # both sides of a conflict must reach it
    # The SQuAD 2.0 articles it was trained on ("train"), calibrated on ("calibration") and
    # judged on ("held-out").
    articles: dict[str, tuple[str, ...]]

    def probabilities(self, rows: np.ndarray) -> np.ndarray:
        x = (rows - self.mean) / self.scale
        if self.interactions:
            left, right = np.asarray(self.interactions).T
            x = np.hstack([x, x[:, left] * x[:, right]])
        return 1.0 / (1.0 + np.exp(-(x @ self.coefficients + self.intercept)))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AnswerScorer:
        if list(data["features"]) != list(FEATURES):
            raise ScorerError("The answer-scorer weights were trained on other features; retrain them.")
        return cls(
            mean=np.asarray(data["mean"]),
            scale=np.asarray(data["scale"]),
            coefficients=np.asarray(data["coefficients"]),
            intercept=float(data["intercept"]),
            interactions=tuple((int(a), int(b)) for a, b in data["interactions"]),
            threshold=float(data["threshold"]),
            cross_lingual_threshold=float(data["cross_lingual_threshold"]),
            conflict_probability=float(data["conflict_probability"]),
            articles={part: tuple(titles) for part, titles in data["articles"].items()},
        )


def card_sha256(card: Path = DATA_CARD) -> str:
    """The weights' sha256 as the data card states it."""
    match = re.search(r"sha256:\s*`?([0-9a-f]{64})", card.read_text(encoding="utf-8"))
    if match is None:
        raise ScorerError(f"{card} states no sha256 of the weights.")
    return match.group(1)


def load_scorer(weights: Path = MODEL_FILE, card: Path = DATA_CARD) -> AnswerScorer:
    """Read a scorer's weights, refusing a file whose sha256 is not the data card's."""
    try:
        raw = weights.read_bytes()
        expected = card_sha256(card)
    except OSError as exc:
        raise ScorerError(f"Cannot read the answer scorer: {exc}. Reinstall qa.") from exc
    if hashlib.sha256(raw).hexdigest() != expected:
        raise ScorerError(
            f"'{weights}' does not match the sha256 in {card.name}: reinstall qa, or retrain with "
            "scripts/train_answer_scorer.py --write and update the data card."
        )
    try:
        return AnswerScorer.from_json(json.loads(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise ScorerError(f"'{weights}' is not answer-scorer weights: {exc}") from exc


_loaded: AnswerScorer | None = None
_lock = threading.Lock()


def reset_shipped_scorer() -> None:
    """Forget the loaded scorer, so the next use reads the weights file again (after the
    training script rewrote it)."""
    global _loaded
    with _lock:
        _loaded = None


def shipped_scorer() -> AnswerScorer:
    """The scorer in ``qa/models``, loaded once per process."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = load_scorer()
        return _loaded


def short_answer(question: str, text: str) -> tuple[int, int] | None:
    """The span in ``text`` of the one value of the asked type (a time, quantity, place or
    person) that the question's words point at, or ``None`` when there is no clear one.

    A value scores 1 / (1 + distance in words) for each question word near it; the best is
    clear when it is the only value or scores a tenth more than any other.
    """
    kind = answer_type(question)
    if kind is None:
        return None
    spans = values(kind, text, question)
    if len(spans) <= 1:
        return spans[0] if spans else None
    wanted = terms(question)
    words = [(m.start(), terms(m.group())) for m in _WORD.finditer(text)]

    def pointed_at(span: tuple[int, int]) -> float:
        at = next((i for i, (start, _) in enumerate(words) if start >= span[0]), len(words))
        nearest: dict[str, int] = {}
        for i, (start, found) in enumerate(words):
            if span[0] <= start < span[1]:
                continue  # the value's own words
            for term in found & wanted:
                nearest[term] = min(nearest.get(term, len(words)), abs(i - at))
        return sum(1.0 / (1 + d) for d in nearest.values())

    scored = sorted(((pointed_at(span), span) for span in spans), reverse=True)
    return scored[0][1] if scored[0][0] > 1.1 * scored[1][0] else None


_WORD = re.compile(r"\w+")
