"""The learned answerability model: P(this answer unit, in its passage, answers the question).

The best-ranked unit of every answer is described by the features below — how close its
embedding is, how much of the question's vocabulary (weighted by corpus rarity) it and its
passage hold, which of the question's rare words, names and numbers are missing, whether
it holds a value of the asked type, how far ahead of the next unit it is — and a logistic
model over them and their pairwise products, trained on SQuAD 2.0 articles
(``scripts/train_answerability.py``, data card ``qa/models/answerability.md``), turns them
into a probability. Abstaining below one
threshold, chosen on articles the model was not trained on, is the whole abstain rule.
Inference is numpy; the weights ship in the package and are checked against the sha256
the data card states.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from qa.errors import ModelFileError
from qa.text import query_terms, stem, stems

MODEL_DIR = Path(__file__).parent / "models"
MODEL_FILE = MODEL_DIR / "answerability.json"
DATA_CARD = MODEL_DIR / "answerability.md"

FEATURES = (
    "cosine",
    "lexical",
    "coverage",
    "idf_coverage",
    "passage_idf_coverage",
    "rarest_missing",
    "rarest_missing_from_passage",
    "names_missing_from_passage",
    "numbers_missing_from_passage",
    "negation_unmatched",
    "extreme_unmatched",
    "asks_typed",
    "typed_value_absent",
    "score_gap",
    "runner_up_gap",
    "passage_rank_prior",
    "question_words",
    "unit_words",
)

_NAME = re.compile(r"(?<!^)(?<![.?!] )\b[A-Z][\w'’-]*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NEGATION = re.compile(r"\b(?:not|never|no|none|nor|without|n't|cannot)\b|n't\b", re.I)
# Superlatives and ordinals: SQuAD 2.0's antonym and "impossible condition" questions
# change exactly these ("the first" → "the last", "largest" → "smallest").
_EXTREME = re.compile(
    r"\b(?:first|last|most|least|best|worst|only|earliest|latest|largest|smallest|highest|lowest|"
    r"biggest|oldest|newest|longest|shortest|major|minor|main)\b",
    re.I,
)


@lru_cache(maxsize=20_000)
def _stem_set(text: str) -> frozenset[str]:
    return frozenset(stems(text))


@lru_cache(maxsize=20_000)
def _names(text: str) -> frozenset[str]:
    return frozenset(re.sub(r"['’]s?$", "", m.group()).casefold() for m in _NAME.finditer(text))


@dataclass(frozen=True)
class UnitEvidence:
    """One unit's features for the model, in ``FEATURES`` order; ``cosine`` and
    ``coverage`` are kept by name for the answer's evidence."""

    cosine: float
    coverage: float
    vector: tuple[float, ...]

    @classmethod
    def of(
        cls,
        question: str,
        unit: str,
        *,
        passage: str,
        title: str,
        cosine: float,
        lexical: float,
        coverage: float,
        score_gap: float,
        runner_up_gap: float,
        passage_rank: int,
        has_typed_value: bool,
        asks_typed: bool,
        corpus_idf: Callable[[str], float] | None,
    ) -> UnitEvidence:
        words = list(dict.fromkeys(query_terms(question)))
        # Without an index (unit tests), every word weighs the same and none is absent.
        idf = {w: corpus_idf(w) if corpus_idf is not None else 1.0 for w in words}
        in_unit = _stem_set(unit)
        in_passage = _stem_set(passage) | _stem_set(title)
        present = [w for w in words if idf[w] > 0]
        total = sum(idf[w] for w in present) or 1.0
        top = max((idf[w] for w in present), default=1.0) or 1.0

        def covered(found: frozenset[str]) -> float:
            return sum(idf[w] for w in present if stem(w) in found) / total

        def rarest_missing(found: frozenset[str]) -> float:
            return max((idf[w] / top for w in present if stem(w) not in found), default=0.0)

        context = f"{title}\n{passage}".casefold()
        names = _names(question)
        numbers = set(_NUMBER.findall(question))
        negated = bool(_NEGATION.search(question)) and not _NEGATION.search(unit)
        extremes = {m.group().lower() for m in _EXTREME.finditer(question)}
        vector = (
            cosine,
            lexical,
            coverage,
            covered(in_unit),
            covered(in_passage),
            rarest_missing(in_unit),
            rarest_missing(in_passage),
            sum(n not in context for n in names) / len(names) if names else 0.0,
            sum(n not in passage for n in numbers) / len(numbers) if numbers else 0.0,
            float(negated),
            float(any(e not in unit.casefold() for e in extremes)),
            float(asks_typed),
            float(asks_typed and not has_typed_value),
            min(score_gap, 1.0),
            min(runner_up_gap, 1.0),
            1.0 / (1 + passage_rank),
            min(len(words), 20) / 10,
            min(len(unit.split()), 100) / 50,
        )
        return cls(cosine, coverage, vector)


def quadratic(z: np.ndarray) -> np.ndarray:
    """Standardised features and all their pairwise products (squares included): a
    logistic model over these can weigh one feature by another (a low cosine matters less
    when every rare word is present)."""
    left, right = np.triu_indices(z.shape[1])
    return np.hstack([z, z[:, left] * z[:, right]])


# The features that do not compare the question's words with the unit's: all a question in
# another language than the documents can use, so the cross-lingual head has only these.
LANGUAGE_FREE = frozenset(
    {
        "cosine",
        "numbers_missing_from_passage",
        "asks_typed",
        "typed_value_absent",
        "score_gap",
        "runner_up_gap",
        "passage_rank_prior",
        "question_words",
        "unit_words",
    }
)
_LANGUAGE_FREE = np.asarray([name in LANGUAGE_FREE for name in FEATURES])


def _inputs(vectors: np.ndarray, language_free: bool) -> np.ndarray:
    """The columns a head reads."""
    return vectors[:, _LANGUAGE_FREE] if language_free else vectors


def _expand(z: np.ndarray, language_free: bool) -> np.ndarray:
    """Standardised inputs as a head weighs them: with pairwise products, or alone."""
    return z if language_free else quadratic(z)


@dataclass(frozen=True)
class Head:
    """Standardised features, their pairwise products, standardised again → logistic
    regression; ``threshold`` is the probability needed to answer. A ``language_free``
    head sees only the features that do not compare words, and no products of them: it is
    fitted on a hundred questions, too few for pairwise weights."""

    mean: np.ndarray
    scale: np.ndarray
    expanded_mean: np.ndarray
    expanded_scale: np.ndarray
    weights: np.ndarray
    bias: float
    threshold: float
    language_free: bool = False

    @classmethod
    def fit(cls, vectors: np.ndarray, labels: np.ndarray, *, c: float, language_free: bool = False) -> Head:
        """Fitted on ``vectors`` (rows of ``FEATURES``) and 0/1 ``labels``; the threshold is
        left at 0.5 for the caller to choose. Needs scikit-learn (training only)."""
        from sklearn.linear_model import LogisticRegression

        x = _inputs(vectors, language_free)
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale == 0] = 1.0
        expanded = _expand((x - mean) / scale, language_free)
        expanded_mean, expanded_scale = expanded.mean(axis=0), expanded.std(axis=0)
        expanded_scale[expanded_scale == 0] = 1.0
        fitted = LogisticRegression(C=c, max_iter=5000).fit(
            (expanded - expanded_mean) / expanded_scale, labels
        )
        weights, bias = fitted.coef_[0], float(fitted.intercept_[0])
        return cls(mean, scale, expanded_mean, expanded_scale, weights, bias, 0.5, language_free)

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        z = (_inputs(vectors, self.language_free) - self.mean) / self.scale
        expanded = (_expand(z, self.language_free) - self.expanded_mean) / self.expanded_scale
        logits = expanded @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))

    def as_dict(self) -> dict[str, object]:
        def numbers(values: np.ndarray) -> list[float]:
            return [float(f"{v:.6g}") for v in values]

        return {
            "mean": numbers(self.mean),
            "scale": numbers(self.scale),
            "expanded_mean": numbers(self.expanded_mean),
            "expanded_scale": numbers(self.expanded_scale),
            "weights": numbers(self.weights),
            "bias": float(f"{self.bias:.6g}"),
            "threshold": self.threshold,
            "language_free": self.language_free,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Head:
        def array(key: str) -> np.ndarray:
            return np.asarray(data[key], dtype=np.float64)

        return cls(
            array("mean"),
            array("scale"),
            array("expanded_mean"),
            array("expanded_scale"),
            array("weights"),
            float(data["bias"]),
            float(data["threshold"]),
            bool(data["language_free"]),
        )


@dataclass(frozen=True)
class AnswerabilityModel:
    """One head for questions in the documents' language (trained on SQuAD 2.0, threshold
    chosen on calibration articles) and one for questions in another language (trained and
    calibrated on XOR-TyDi's Korean questions over English passages)."""

    same_language: Head
    cross_lingual: Head
    articles: dict[str, list[str]]  # the SQuAD 2.0 split: train, calibration, held-out

    @property
    def threshold(self) -> float:
        return self.same_language.threshold

    @property
    def cross_lingual_threshold(self) -> float:
        return self.cross_lingual.threshold

    def head(self, cross_lingual: bool) -> Head:
        return self.cross_lingual if cross_lingual else self.same_language

    def probability(self, evidence: UnitEvidence, *, cross_lingual: bool = False) -> float:
        return float(self.head(cross_lingual).probabilities(np.asarray([evidence.vector]))[0])

    def to_json(self) -> str:
        return json.dumps(
            {
                "features": list(FEATURES),
                "same_language": self.same_language.as_dict(),
                "cross_lingual": self.cross_lingual.as_dict(),
                "articles": self.articles,
            }
        )


def _card_sha256() -> str:
    match = re.search(r"sha256: `([0-9a-f]{64})`", DATA_CARD.read_text(encoding="utf-8"))
    if match is None:
        raise ModelFileError(f"{DATA_CARD} states no sha256; reinstall qa.")
    return match.group(1)


def load_model(path: Path = MODEL_FILE, *, check: bool = True) -> AnswerabilityModel:
    """The model in ``path``; with ``check``, only if its hash is the data card's."""
    try:
        raw = path.read_bytes()
        if check and hashlib.sha256(raw).hexdigest() != _card_sha256():
            raise ModelFileError(
                f"{path} is not the model its data card describes (sha256 differs); reinstall qa "
                "or retrain with scripts/train_answerability.py --write."
            )
        data = json.loads(raw)
    except (OSError, ValueError) as exc:
        raise ModelFileError(f"Cannot read the answerability model {path}: {exc}; reinstall qa.") from exc
    if data.get("features") != list(FEATURES):
        raise ModelFileError(f"{path} was trained on other features than this qa computes; reinstall qa.")
    try:
        return AnswerabilityModel(
            Head.from_dict(data["same_language"]),
            Head.from_dict(data["cross_lingual"]),
            {k: list(v) for k, v in data["articles"].items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"The answerability model {path} is damaged ({exc}); reinstall qa.") from exc


@lru_cache(maxsize=1)
def shipped_model() -> AnswerabilityModel:
    """The model shipped in ``qa/models``, loaded once."""
    return load_model()
