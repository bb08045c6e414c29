"""Measure answers against a JSONL question set (the format of ``seed_qa_dev.jsonl``).

Each line: ``{"id", "question", "type", "any": [...]}`` (one must appear in the answer),
``"all": [...]`` (each must appear), or ``"abstain": true`` (no answer exists); optional
``"sources"`` lists the documents that hold the answer.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import statistics
import string
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from qa.build import BuildProgress, build_index
from qa.config import RetrievalOptions, Settings, Thresholds
from qa.errors import EvalDataError
from qa.pipeline import Engine
from qa.records import Answer, BuildReport
from qa.text import CITATION_MARKER


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
        raise EvalDataError(f"Cannot read questions from '{path}': {exc}") from exc


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


# --- retrieval quality on BEIR-format data ---------------------------------------------------

RETRIEVAL_MODES = {
    "dense": RetrievalOptions(dense=True, lexical=False, rerank=False),
    "lexical": RetrievalOptions(dense=False, lexical=True, rerank=False),
    "hybrid": RetrievalOptions(dense=True, lexical=True, rerank=False),
    "hybrid+rerank": RetrievalOptions(dense=True, lexical=True, rerank=True),
}


@dataclass(frozen=True)
class RetrievalScores:
    ndcg_at_10: float
    recall_at_10: float
    recall_at_100: float
    mrr_at_10: float


@dataclass(frozen=True)
class BeirReport:
    dataset: str
    queries: int
    documents: int
    modes: dict[str, RetrievalScores]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def load_beir(
    directory: str | os.PathLike[str], split: str = "test"
) -> tuple[dict[str, tuple[str, str]], dict[str, str], dict[str, dict[str, int]]]:
    """``(corpus {id: (title, text)}, queries {id: text}, qrels {query: {doc: grade}})``."""
    root = Path(directory)
    try:
        corpus = {}
        for line in (root / "corpus.jsonl").open(encoding="utf-8"):
            doc = json.loads(line)
            corpus[str(doc["_id"])] = (doc.get("title") or "", doc["text"])
        queries = {
            str(q["_id"]): q["text"] for q in map(json.loads, (root / "queries.jsonl").open(encoding="utf-8"))
        }
        qrels: dict[str, dict[str, int]] = defaultdict(dict)
        for row in (root / "qrels" / f"{split}.tsv").read_text(encoding="utf-8").splitlines()[1:]:
            query_id, doc_id, grade = row.strip().split("\t")
            if int(grade) > 0:
                qrels[query_id][doc_id] = int(grade)
    except (OSError, ValueError, KeyError) as exc:
        raise EvalDataError(
            f"'{directory}' is not BEIR-format data (corpus.jsonl, queries.jsonl, qrels/): {exc}"
        ) from exc
    return corpus, {q: queries[q] for q in qrels if q in queries}, dict(qrels)


_MAX_NAME = 200  # bytes of a file name's stem; most file systems allow 255 for the whole name


def document_file_stem(doc_id: str) -> str:
    """A file name (without ``.txt``) for a data set's document id: the id itself when it
    is a plain name (``4983``, ``00_001``), else percent-encoded
    (``<dbpedia:F/A-18>`` -> ``%3Cdbpedia%3AF%2FA-18%3E``), never hidden (a leading dot is
    encoded too), and shortened with a hash of the id when too long. Distinct ids get
    distinct names; ``evaluate_retrieval`` maps them back."""
    stem = urllib.parse.quote(doc_id, safe="")
    if stem.startswith("."):
        stem = "%2E" + stem[1:]
    if len(stem.encode()) > _MAX_NAME:
        stem = f"{stem[: _MAX_NAME - 41]}~{hashlib.sha1(doc_id.encode()).hexdigest()}"
    return stem


def write_corpus_folder(corpus: dict[str, tuple[str, str]], folder: Path) -> None:
    """One ``<id>.txt`` per document (title line, blank line, text; the id made a safe file
    name by ``document_file_stem``), so the benchmark goes through the same ingest, cleaning
    and chunking as any user's files. Unchanged files are left alone, so the next build is
    incremental."""
    folder.mkdir(parents=True, exist_ok=True)
    for doc_id, (title, text) in corpus.items():
        path = folder / f"{document_file_stem(doc_id)}.txt"
        content = f"{title}\n\n{text}\n" if title else f"{text}\n"
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")


def corpus_engine(
    documents: dict[str, tuple[str, str]],
    folder: Path,
    *,
    progress: BuildProgress | None = None,
    multilingual: bool = False,
    thresholds: Thresholds | None = None,
) -> tuple[Engine, BuildReport]:
    """An engine over ``documents`` ({id: (title, text)}), written as files into
    ``folder/corpus`` and built like any corpus into ``folder/index`` (with a cross-lingual
    index only when ``multilingual``). Later calls rebuild incrementally, which costs
    nothing."""
    write_corpus_folder(documents, folder / "corpus")
    report = build_index(
        folder / "corpus", folder / "index", settings=Settings(multilingual=multilingual), progress=progress
    )
    return Engine(folder / "index", thresholds=thresholds), report


def _dcg(gains: Sequence[float]) -> float:
    return sum(g / math.log2(rank + 2) for rank, g in enumerate(gains))


def score_ranking(ranking: list[str], relevant: dict[str, int]) -> RetrievalScores:
    """nDCG@10, recall@10/100 and MRR@10 of one ranked list of document ids."""
    ideal = _dcg(sorted(relevant.values(), reverse=True)[:10])
    ndcg = _dcg([relevant.get(d, 0) for d in ranking[:10]]) / ideal if ideal else 0.0
    first = next((rank for rank, d in enumerate(ranking[:10], start=1) if d in relevant), None)
    return RetrievalScores(
        ndcg_at_10=ndcg,
        recall_at_10=len(set(ranking[:10]) & set(relevant)) / len(relevant),
        recall_at_100=len(set(ranking[:100]) & set(relevant)) / len(relevant),
        mrr_at_10=0.0 if first is None else 1.0 / first,
    )


def evaluate_retrieval(
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    engine: Engine,
    *,
    modes: dict[str, RetrievalOptions] | None = None,
) -> dict[str, RetrievalScores]:
    """Document-level retrieval scores per mode. A document ranks by its best chunk."""
    modes = RETRIEVAL_MODES if modes is None else modes
    retriever = engine.retriever()
    # File stems back to ids; only relevant documents need theirs (the others score 0).
    doc_ids = {document_file_stem(d): d for relevant in qrels.values() for d in relevant}
    results: dict[str, list[RetrievalScores]] = defaultdict(list)
    for query_id, text in queries.items():
        query = retriever.query(text)  # embedded once for every mode
        for name, options in modes.items():
            hits = retriever.search(query, replace(options, k=300, candidates=300))
            stems = (Path(h.chunk.source).stem for h in hits)
            ranking = list(dict.fromkeys(doc_ids.get(stem, stem) for stem in stems))
            results[name].append(score_ranking(ranking, qrels[query_id]))
    return {
        name: RetrievalScores(
            *(statistics.fmean(getattr(s, f) for s in scores) for f in RetrievalScores.__dataclass_fields__)
        )
        for name, scores in results.items()
    }


# --- answers on SQuAD: open retrieval over every paragraph ----------------------------------


@dataclass(frozen=True)
class SquadReport:
    questions: int
    paragraphs: int
    answer_contains_gold: float  # a gold answer string appears in the composed answer
    gold_paragraph_cited: float
    abstained: float
    mean_answer_words: float
    short_answers: float  # share of questions given a short answer before the sentences
    short_answers_right: float | None  # share of those that match a gold answer
    latency_p50_ms: float

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _squad_paragraphs(path: str | os.PathLike[str], kind: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """``(paragraph id, article title, context, paragraph)`` for every paragraph of a SQuAD
    JSON file, ids numbered by article and paragraph."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))["data"]
        return [
            (f"{a:02d}_{p:03d}", article["title"], paragraph["context"], paragraph)
            for a, article in enumerate(data)
            for p, paragraph in enumerate(article["paragraphs"])
        ]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EvalDataError(f"'{path}' is not a {kind} JSON file: {exc}") from exc


def load_squad(
    path: str | os.PathLike[str], *, every: int = 1
) -> tuple[dict[str, tuple[str, str]], list[tuple[str, list[str], str]]]:
    """``(paragraphs {id: (title, context)}, questions [(question, answers, paragraph id)])``,
    keeping every ``every``-th question (all paragraphs are always kept)."""
    paragraphs: dict[str, tuple[str, str]] = {}
    questions = []
    for paragraph_id, title, context, paragraph in _squad_paragraphs(path, "SQuAD v1.1"):
        paragraphs[paragraph_id] = (title.replace("_", " "), context)
        for qa in paragraph["qas"]:
            questions.append((qa["question"], [x["text"] for x in qa["answers"]], paragraph_id))
    return paragraphs, questions[::every]


def evaluate_squad(
    questions: list[tuple[str, list[str], str]], engine: Engine, paragraphs: int
) -> SquadReport:
    engine.warm_up()
    contains = cited = abstained = short = short_right = 0
    words: list[int] = []
    latencies: list[float] = []
    for question, answers, paragraph_id in questions:
        result = engine.answer(question)
        latencies.append(result.timings_ms["total"])
        abstained += result.abstained
        cited += any(Path(c.source).stem == paragraph_id for c in result.citations)
        if not result.abstained:
            text = result.text.casefold()
            contains += any(a.casefold() in text for a in answers)
            words.append(len(result.text.split()))
            if result.short_answer is not None:
                lead = result.short_answer.value.casefold()
                short += 1
                short_right += any(a.casefold() in lead or lead in a.casefold() for a in answers)
    n = max(1, len(questions))
    return SquadReport(
        questions=len(questions),
        paragraphs=paragraphs,
        answer_contains_gold=contains / n,
        gold_paragraph_cited=cited / n,
        abstained=abstained / n,
        mean_answer_words=statistics.fmean(words) if words else 0.0,
        short_answers=short / n,
        short_answers_right=_ratio(short_right, short),
        latency_p50_ms=statistics.median(latencies) if latencies else 0.0,
    )


# --- SQuAD 2.0: answerable and unanswerable questions, open retrieval ------------------------


@dataclass(frozen=True)
class Squad2Question:
    question: str
    answers: list[str]  # empty when the question is unanswerable
    paragraph: str
    article: str


@dataclass(frozen=True)
class Squad2Report:
    questions: int
    answerable: int
    unanswerable: int
    paragraphs: int
    articles: list[str]
    threshold: float  # P(the best unit answers) needed to answer
    answerable_right: float  # answered, and a gold answer is in the answer
    unanswerable_abstained: float
    median_answer_words: float
    short_answers: float  # share of answered answerable questions that lead with a short answer
    short_exact_match: float | None  # SQuAD EM and F1 of those short answers
    short_f1: float | None
    latency_p50_ms: float
    # (threshold, answerable right, unanswerable abstained) for a range of thresholds
    trade_off: list[tuple[float, float, float]]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def load_squad2(
    path: str | os.PathLike[str], *, articles: Sequence[str] | None = None, every: int = 1
) -> tuple[dict[str, tuple[str, str]], list[Squad2Question]]:
    """``(paragraphs {id: (title, context)}, questions)``: every paragraph of the file (the
    corpus is always the whole file) and every ``every``-th question of ``articles``
    (``None``: of all articles)."""
    paragraphs: dict[str, tuple[str, str]] = {}
    questions = []
    for paragraph_id, title, context, paragraph in _squad_paragraphs(path, "SQuAD 2.0"):
        paragraphs[paragraph_id] = (title.replace("_", " "), context)
        if articles is None or title in articles:
            for qa in paragraph["qas"]:
                answers = sorted({x["text"] for x in qa["answers"]})
                questions.append(Squad2Question(qa["question"], answers, paragraph_id, title))
    if not questions:
        raise EvalDataError(
            f"'{path}' has no questions in the articles asked for ({', '.join(articles or [])})."
        )
    return paragraphs, questions[::every]


def squad_normalise(text: str) -> str:
    """The official SQuAD normalisation: lower case, no punctuation, no articles."""
    text = "".join(c for c in text.lower() if c not in string.punctuation)
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def squad_f1(prediction: str, gold: str) -> float:
    predicted, expected = squad_normalise(prediction).split(), squad_normalise(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


TRADE_OFF_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 20))
NEVER_ABSTAIN = Thresholds(answer=0.0, cross_lingual=0.0)


def evaluate_squad2(
    questions: list[Squad2Question], engine: Engine, paragraphs: int, *, threshold: float
) -> Squad2Report:
    """Answer each question once with abstention off (``engine`` built with
    ``NEVER_ABSTAIN``), keeping the probability that the answer answers; the rates at
    ``threshold``, and at every threshold of the trade-off, follow from those without
    asking again."""
    engine.warm_up()
    probability, right, answerable, words, latencies = [], [], [], [], []
    exact: list[float] = []
    f1: list[float] = []
    for item in questions:
        result = engine.answer(item.question)
        latencies.append(result.timings_ms["total"])
        p = result.evidence.get("answer_probability", 0.0)
        probability.append(p)
        answerable.append(bool(item.answers))
        text = result.text.casefold()
        right.append(any(a.casefold() in text for a in item.answers))
        if p >= threshold:
            words.append(len(CITATION_MARKER.sub("", result.text).split()))
            if item.answers and result.short_answer is not None:
                value = result.short_answer.value
                exact.append(max(float(squad_normalise(value) == squad_normalise(a)) for a in item.answers))
                f1.append(max(squad_f1(value, a) for a in item.answers))

    def rates(t: float) -> tuple[float, float, float]:
        answered = [p >= t for p in probability]
        good = sum(a and r and y for a, r, y in zip(answered, right, answerable, strict=True))
        abstained = sum(not a and not y for a, y in zip(answered, answerable, strict=True))
        return t, good / max(1, sum(answerable)), abstained / max(1, len(answerable) - sum(answerable))

    answered_answerable = sum(p >= threshold and y for p, y in zip(probability, answerable, strict=True))
    _, answerable_right, unanswerable_abstained = rates(threshold)
    return Squad2Report(
        questions=len(questions),
        answerable=sum(answerable),
        unanswerable=len(answerable) - sum(answerable),
        paragraphs=paragraphs,
        articles=sorted({q.article for q in questions}),
        threshold=threshold,
        answerable_right=answerable_right,
        unanswerable_abstained=unanswerable_abstained,
        median_answer_words=statistics.median(words) if words else 0.0,
        short_answers=len(exact) / max(1, answered_answerable),
        short_exact_match=statistics.fmean(exact) if exact else None,
        short_f1=statistics.fmean(f1) if f1 else None,
        latency_p50_ms=statistics.median(latencies) if latencies else 0.0,
        trade_off=[rates(t) for t in TRADE_OFF_THRESHOLDS],
    )
