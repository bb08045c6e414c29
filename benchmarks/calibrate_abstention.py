"""Choose the abstention thresholds from measured evidence, not by eye.

Answerable questions: the dev set's answerable ones (demo corpus) and SQuAD v1.1 dev
questions whose gold paragraph is retrieved (SQuAD paragraphs). Unanswerable: the dev set's
unanswerable ones, plus SQuAD questions and SciFact claims asked of the demo corpus (absent
topics). Every question is answered with abstention switched off, its evidence (best
sentence similarity, lexical coverage) recorded, and a grid of thresholds scored.

    python benchmarks/calibrate_abstention.py [--shared ../shared] [--work .qa-eval]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from qa.config import Thresholds
from qa.evaluate import corpus_engine, load_questions, load_squad
from qa.pipeline import Engine

NEVER_ABSTAIN = Thresholds(similarity=-9.0, coverage=-9.0, cross_lingual_similarity=-9.0)


def evidence(engine: Engine, questions: list[str]) -> np.ndarray:
    rows = []
    for question in questions:
        result = engine.answer(question)
        rows.append((result.evidence["similarity"], result.evidence["coverage"]))
    return np.array(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared"))
    parser.add_argument("--work", default=".qa-eval")
    parser.add_argument("--every", type=int, default=20, help="keep every Nth SQuAD question")
    args = parser.parse_args()
    shared = Path(args.shared)
    if not (shared / "eval" / "seed_qa_dev.jsonl").is_file():
        print(f"skipped: {shared} has no eval/seed_qa_dev.jsonl", file=sys.stderr)
        return 0

    work = Path(args.work)
    corpus_dir = Path(__file__).resolve().parents[1] / "corpus"
    demo = {p.stem: ("", p.read_text(encoding="utf-8")) for p in sorted(corpus_dir.glob("*.txt"))}
    demo_engine, _ = corpus_engine(demo, work / "demo")
    demo_engine.thresholds = NEVER_ABSTAIN

    dev = [q for q in load_questions(shared / "eval" / "seed_qa_dev.jsonl") if q.get("type") != "korean"]
    dev_pos = evidence(demo_engine, [q["question"] for q in dev if not q.get("abstain")])
    dev_neg = evidence(demo_engine, [q["question"] for q in dev if q.get("abstain")])

    paragraphs, squad = load_squad(shared / "data" / "squad" / "dev-v1.1.json", every=args.every)
    squad_engine, _ = corpus_engine(paragraphs, work / "squad")
    squad_engine.thresholds = NEVER_ABSTAIN
    answerable = []
    for question, _, paragraph_id in squad:
        hits = squad_engine.search(question, k=3)
        if any(Path(h.chunk.source).stem == paragraph_id for h in hits):
            answerable.append(question)
    squad_pos = evidence(squad_engine, answerable)
    squad_neg = evidence(demo_engine, [q for q, _, _ in squad])
    claims = [json.loads(line)["text"] for line in (shared / "data/beir/scifact/queries.jsonl").open()]
    scifact_neg = evidence(demo_engine, claims)

    positives = np.vstack([dev_pos, squad_pos])
    negatives = np.vstack([dev_neg, squad_neg, scifact_neg])
    print(
        f"answerable: {len(dev_pos)} dev + {len(squad_pos)} SQuAD; "
        f"unanswerable: {len(dev_neg)} dev + {len(squad_neg)} SQuAD-on-demo + {len(scifact_neg)} SciFact-on-demo"
    )

    def answered(rows: np.ndarray, sim: float, cov: float) -> np.ndarray:
        return (rows[:, 0] >= sim) | (rows[:, 1] >= cov)

    results = []
    for sim, cov in itertools.product(np.arange(0.30, 0.71, 0.025), np.arange(0.40, 1.61, 0.05)):
        answer_rate = answered(positives, sim, cov).mean()
        abstain_rate = 1 - answered(negatives, sim, cov).mean()
        dev_ok = answered(dev_pos, sim, cov).all() and not answered(dev_neg, sim, cov).any()
        results.append(
            (round((answer_rate + abstain_rate) / 2, 4), dev_ok, sim, cov, answer_rate, abstain_rate)
        )
    results.sort(key=lambda r: (r[1], r[0]), reverse=True)
    print(f"{'balanced':>8} {'dev ok':>6} {'sim':>6} {'cov':>6} {'answers':>8} {'abstains':>8}")
    for row in results[:10]:
        print(f"{row[0]:8.3f} {row[1]!s:>6} {row[2]:6.3f} {row[3]:6.2f} {row[4]:8.1%} {row[5]:8.1%}")
    current = Thresholds()  # the defaults in qa/compose.py
    print(
        f"current defaults: sim {current.similarity}, cov {current.coverage}: answers "
        f"{answered(positives, current.similarity, current.coverage).mean():.1%} of answerable, abstains on "
        f"{1 - answered(negatives, current.similarity, current.coverage).mean():.1%} of unanswerable"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
