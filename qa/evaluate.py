"""Measure answers against a JSONL question set (the format of ``seed_qa_dev.jsonl``).

Each line: ``{"id", "question", "type", "any": [...]}`` (one must appear in the answer),
``"all": [...]`` (each must appear), or ``"abstain": true`` (no answer exists); optional
``"sources"`` lists the documents that hold the answer.
"""

from __future__ import annotations

import json
import os
import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa.errors import QAError
from qa.pipeline import Engine
from qa.records import Answer


@dataclass(frozen=True)
class QuestionResult:
    id: str
    type: str
    correct: bool
    abstained: bool
    should_abstain: bool
    gold_source_cited: bool | None  # None when the question names no gold source
    verbatim: bool
    latency_ms: float
    answer: str


@dataclass(frozen=True)
class EvalReport:
    questions: int
    accuracy: float
    by_type: dict[str, float]
    abstention_precision: float | None
    abstention_recall: float | None
    gold_source_hit_rate: float | None
    citation_verbatim_rate: float
    latency_p50_ms: float
    latency_p95_ms: float
    failed: list[str]
    results: list[QuestionResult] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False)


def load_questions(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]
    except (OSError, ValueError) as exc:
        raise QAError(f"Cannot read questions from '{path}': {exc}") from exc


def is_correct(item: dict[str, Any], result: Answer) -> bool:
    """The dev set's rule: abstain when told to; else ``any`` / ``all`` must appear."""
    if item.get("abstain"):
        return result.abstained
    if result.abstained:
        return False
    text = result.text.casefold()
    if "all" in item:
        return all(expected.casefold() in text for expected in item["all"])
    return any(expected.casefold() in text for expected in item.get("any", []))


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def evaluate(questions: list[dict[str, Any]], engine: Engine) -> EvalReport:
    """Answer every question with ``engine`` and score the answers."""
    engine.warm_up()  # load the models first so that no latency includes a cold start
    results: list[QuestionResult] = []
    for item in questions:
        result = engine.answer(item["question"])
        index = engine.index()
        verbatim = all(index.document_text(c.source)[c.start : c.end] == c.excerpt for c in result.citations)
        gold = item.get("sources")
        results.append(
            QuestionResult(
                id=str(item.get("id", len(results))),
                type=str(item.get("type", "unknown")),
                correct=is_correct(item, result),
                abstained=result.abstained,
                should_abstain=bool(item.get("abstain")),
                gold_source_cited=None if not gold else any(c.source in gold for c in result.citations),
                verbatim=verbatim,
                latency_ms=result.timings_ms["total"],
                answer=result.text,
            )
        )
    by_type: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        by_type[r.type].append(r.correct)
    abstained = [r for r in results if r.abstained]
    should = [r for r in results if r.should_abstain]
    with_gold = [r for r in results if r.gold_source_cited is not None]
    latencies = [r.latency_ms for r in results] or [0.0]
    return EvalReport(
        questions=len(results),
        accuracy=sum(r.correct for r in results) / max(1, len(results)),
        by_type={t: sum(v) / len(v) for t, v in sorted(by_type.items())},
        abstention_precision=_ratio(sum(r.should_abstain for r in abstained), len(abstained)),
        abstention_recall=_ratio(sum(r.abstained for r in should), len(should)),
        gold_source_hit_rate=_ratio(sum(bool(r.gold_source_cited) for r in with_gold), len(with_gold)),
        citation_verbatim_rate=sum(r.verbatim for r in results) / max(1, len(results)),
        latency_p50_ms=statistics.median(latencies),
        latency_p95_ms=_percentile(latencies, 0.95),
        failed=[r.id for r in results if not r.correct],
        results=results,
    )
