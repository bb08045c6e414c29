"""Answers to Korean questions: XOR-TyDi (Korean -> English passages) and KorQuAD (Korean -> Korean).

    python -m benchmarks.korean_qa xor-tydi [--work .qa-eval]
    python -m benchmarks.korean_qa korquad [--every 10] [--work .qa-eval]

Every paragraph of the set becomes one file of a corpus that is built with the default
settings (the cross-lingual index included), then every question is answered through
``Engine.answer`` like any user's. Reported: the share of answerable questions whose gold
paragraph is among the citations, whose answer contains a gold answer string (and is not an
abstention), and that were abstained; for XOR-TyDi also the share of unanswerable rows that
were abstained.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from benchmarks._common import SHARED_DATA, append_results, require

SETS = {
    "xor-tydi": SHARED_DATA / "xor-tydi-ko" / "ko-en.dev-half.json",
    "korquad": SHARED_DATA / "korquad" / "KorQuAD_v1.0_dev.json",
}


@dataclass(frozen=True)
class Question:
    text: str
    answers: list[str]
    gold: set[str]  # paragraph ids that answer it; empty when none does


def load(path: Path, every: int) -> tuple[dict[str, tuple[str, str]], list[Question]]:
    """Paragraphs ``{id: (title, text)}`` and questions (every ``every``-th distinct one)."""
    data = json.loads(require(path, path.name).read_text(encoding="utf-8"))["data"]
    paragraphs: dict[str, tuple[str, str]] = {}
    answers: dict[str, list[str]] = defaultdict(list)
    gold: dict[str, set[str]] = defaultdict(set)
    for a, article in enumerate(data):
        for p, paragraph in enumerate(article["paragraphs"]):
            paragraph_id = f"{a:03d}_{p:03d}"
            paragraphs[paragraph_id] = (article.get("title", "").replace("_", " "), paragraph["context"])
            for qa in paragraph["qas"]:
                gold.setdefault(qa["question"], set())
                if not qa.get("is_impossible"):
                    gold[qa["question"]].add(paragraph_id)
                    answers[qa["question"]] += [answer["text"] for answer in qa["answers"]]
    questions = [Question(text, answers[text], gold[text]) for text in gold]
    return paragraphs, questions[::every]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("set", choices=sorted(SETS))
    parser.add_argument("--every", type=int, default=None, help="every Nth question (KorQuAD default 10)")
    parser.add_argument("--work", type=Path, default=Path(".qa-eval"))
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    every = args.every if args.every is not None else (10 if args.set == "korquad" else 1)

    from qa.build import build_index
    from qa.evaluate import write_corpus_folder
    from qa.pipeline import Engine

    paragraphs, questions = load(SETS[args.set], every)
    folder = args.work / args.set
    write_corpus_folder(paragraphs, folder / "corpus")  # paragraph ids are plain file names
    report = build_index(folder / "corpus", folder / "index")
    engine = Engine(folder / "index")
    engine.warm_up()
    cited = right = abstained = unanswerable_abstained = 0
    latencies: list[float] = []
    answerable = [q for q in questions if q.gold]
    for question in questions:
        answer = engine.answer(question.text)
        latencies.append(answer.timings_ms["total"])
        if not question.gold:
            unanswerable_abstained += answer.abstained
            continue
        cited += any(Path(c.source).stem in question.gold for c in answer.citations)
        abstained += answer.abstained
        text = answer.text.casefold()
        right += not answer.abstained and any(a.casefold() in text for a in question.answers)
    n = max(1, len(answerable))
    table = [
        ("corpus", f"{len(paragraphs)} paragraphs, {report.chunks} chunks"),
        ("answerable questions", str(len(answerable))),
        ("gold paragraph cited", f"{cited / n:.1%}"),
        ("answer right (contains a gold answer)", f"{right / n:.1%}"),
        ("abstained although answerable", f"{abstained / n:.1%}"),
        ("answer latency p50", f"{statistics.median(latencies):.0f} ms"),
    ]
    unanswerable = len(questions) - len(answerable)
    if unanswerable:
        table.append(("unanswerable questions abstained", f"{unanswerable_abstained}/{unanswerable}"))
    command = f"python -m benchmarks.korean_qa {args.set}" + (f" --every {every}" if every != 1 else "")
    append_results(f"Korean questions: {args.set}", command, table, [], record=not args.no_record)


if __name__ == "__main__":
    main()
