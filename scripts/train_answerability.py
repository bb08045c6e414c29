"""Reproduce the shipped answerability model (qa/models/answerability.json) from SQuAD 2.0.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_answerability.py            # compare, print
    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_answerability.py --write    # and save

Every paragraph of ../shared/data/squad2 becomes a document of one index, as in
``qa eval --squad2``; each question is ranked by the real engine (``Engine.ranking``), so the
model learns on the evidence it will see. Articles are split once, by a fixed seed: train
(model fitted), calibration (threshold chosen), held out (reported only). Train articles also
give constructed near misses: an answerable question with one of its names swapped for a
name from another article, labelled unanswerable. The cross-lingual threshold is chosen the
same way on the first half of XOR-TyDi's Korean questions (by question), the second half
reported. Needs scikit-learn (``pip install -e '.[train]'``); rankings are cached in --work.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import random
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from qa.answerability import FEATURES, MODEL_FILE, AnswerabilityModel, Head
from qa.evaluate import corpus_engine, load_squad2
from qa.pipeline import Engine

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SQUAD2 = SHARED / "squad2" / "dev-v2.0.genuine-17articles.json"
XOR_TYDI = SHARED / "xor-tydi-ko" / "ko-en.dev-half.json"
SPLIT_SEED = 10
SPLIT_SIZES = {"train": 10, "calibration": 3, "held-out": 4}
UNITS_PER_QUESTION = 3  # the top units of each question are training rows
KEEP_RIGHT = 0.95  # the threshold keeps this share of the right answers on calibration
_NAME = re.compile(r"(?<!^)\b[A-Z][a-z]{2,}\b")


def split_articles(titles: list[str]) -> dict[str, list[str]]:
    order = sorted(titles)
    random.Random(SPLIT_SEED).shuffle(order)
    split, first = {}, 0
    for name, size in SPLIT_SIZES.items():
        split[name] = sorted(order[first : first + size])
        first += size
    return split


def swapped_names(questions: list[dict[str, Any]], train: set[str]) -> list[dict[str, Any]]:
    """Near misses: a train question with a name replaced by another article's name, which
    its paragraph does not hold. Labelled unanswerable."""
    rng = random.Random(SPLIT_SEED)
    names_by_article: dict[str, set[str]] = {}
    for q in questions:
        names_by_article.setdefault(q["article"], set()).update(_NAME.findall(q["question"]))
    made = []
    for q in questions:
        if q["article"] not in train or not q["answers"] or rng.random() > 0.4:
            continue
        names = [n for n in _NAME.findall(q["question"]) if n in q["context"]]
        if not names:
            continue
        others = sorted(
            n
            for a, found in names_by_article.items()
            if a != q["article"]
            for n in found
            if n not in q["context"]
        )
        swapped = re.sub(rf"\b{rng.choice(names)}\b", rng.choice(others), q["question"], count=1)
        made.append({**q, "question": swapped, "answers": [], "swapped": True})
    return made


def rows_for(engine: Engine, questions: list[dict[str, Any]], cache: Path) -> list[dict[str, Any]]:
    """Per question: the feature vectors of its top units and whether each holds a gold
    answer. Cached: ranking every question is most of the time."""
    if cache.is_file():
        return pickle.loads(cache.read_bytes())
    out = []
    for n, q in enumerate(questions):
        ranking = engine.ranking(q["question"])
        units = [] if ranking is None else ranking.units[:UNITS_PER_QUESTION]
        vectors = [] if ranking is None else [ranking.evidence(i).vector for i in range(len(units))]
        holds = [any(a.casefold() in u.text.casefold() for a in q["answers"]) for u in units]
        out.append(
            {**q, "x": np.asarray(vectors, dtype=np.float64).reshape(-1, len(FEATURES)), "holds": holds}
        )
        if n % 500 == 0:
            print(f"  ranked {n}/{len(questions)}", file=sys.stderr)
    cache.write_bytes(pickle.dumps(out))
    return out


def squad2_rows(work: Path) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """Every question of the file asked over all its paragraphs, plus the constructed near
    misses and off-topic questions."""
    paragraphs, items = load_squad2(SQUAD2)
    split = split_articles(sorted({q.article for q in items}))
    questions = [
        {
            "question": q.question,
            "answers": q.answers,
            "article": q.article,
            "context": paragraphs[q.paragraph][1],
            "swapped": False,
            "off_topic": False,
        }
        for q in items
    ]
    questions += swapped_names(questions, set(split["train"]))
    engine, _ = corpus_engine(paragraphs, work / "squad2")
    rows = rows_for(engine, questions, work / "squad2-rows.pkl")
    return rows + off_topic_rows(work, paragraphs, questions, split), split


def off_topic_rows(
    work: Path,
    paragraphs: dict[str, tuple[str, str]],
    questions: list[dict[str, Any]],
    split: dict[str, list[str]],
) -> list[dict[str, Any]]:
    """Questions asked of a corpus that does not cover their article at all: the train
    articles in two halves, each half's questions (every second one) over the other half's
    paragraphs, and the held-out articles' questions over the second half (reported only).
    SQuAD 2.0's own questions are all on topic; without these the model would never see
    a question the corpus knows nothing about."""
    halves = split["train"][::2], split["train"][1::2]
    asked = (halves[0], halves[1], split["held-out"])
    rows = []
    for n, (own, other) in enumerate(zip(asked, (halves[1], halves[0], halves[1]), strict=True)):
        titles = {t.replace("_", " ") for t in other}
        corpus = {pid: p for pid, p in paragraphs.items() if p[0] in titles}
        engine, _ = corpus_engine(corpus, work / f"off-topic-{n}")
        off = [
            {**q, "answers": [], "off_topic": True}
            for q in questions
            if q["article"] in own and not q["swapped"]
        ]
        rows += rows_for(engine, off[::2], work / f"off-topic-{n}-rows.pkl")
    return rows


def xor_tydi_rows(work: Path) -> list[dict[str, Any]]:
    data = json.loads(XOR_TYDI.read_text(encoding="utf-8"))["data"]
    documents, questions = {}, []
    for n, article in enumerate(data):
        for paragraph in article["paragraphs"]:
            documents[f"x{n:04d}"] = (article["title"] or f"Passage {n}", paragraph["context"])
            for qa in paragraph["qas"]:
                questions.append({"question": qa["question"], "answers": [a["text"] for a in qa["answers"]]})
    engine, _ = corpus_engine(documents, work / "xor-tydi", multilingual=True)
    return rows_for(engine, questions, work / "xor-tydi-rows.pkl")


# --- models and thresholds ------------------------------------------------------------------


def training_matrix(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for r in rows:
        for vector, holds in zip(r["x"], r["holds"], strict=True):
            xs.append(vector)
            ys.append(int(holds))
    return np.asarray(xs), np.asarray(ys)


def question_level(rows: list[dict[str, Any]], predict: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(P of each question's best unit, whether that unit is right, whether answerable)."""
    usable = [r for r in rows if len(r["x"])]
    p = predict(np.asarray([r["x"][0] for r in usable]))
    right = np.asarray([bool(r["holds"][0]) for r in usable])
    answerable = np.asarray([bool(r["answers"]) for r in usable])
    return p, right, answerable


def rates(p: np.ndarray, right: np.ndarray, answerable: np.ndarray, t: float) -> tuple[float, float]:
    answered = p >= t
    good = (answered & right & answerable).sum() / max(1, answerable.sum())
    abstained = (~answered & ~answerable).sum() / max(1, (~answerable).sum())
    return float(good), float(abstained)


def keep_right_threshold(p: np.ndarray, right: np.ndarray, answerable: np.ndarray) -> float:
    """The highest threshold that still answers ``KEEP_RIGHT`` of the questions the best
    unit answers rightly: abstain as much as possible while giving up at most one right
    answer in twenty."""
    kept = np.sort(p[right & answerable])
    return float(kept[int((1 - KEEP_RIGHT) * len(kept))]) if len(kept) else 0.5


QUADRATIC_C = 0.1  # inverse regularisation of the shipped heads


def predictor(kind: str, x: np.ndarray, y: np.ndarray) -> Any:
    """P(unit answers) for feature vectors, from a model of ``kind`` fitted on ``x, y``."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "quadratic logistic":
        return Head.fit(x, y, c=QUADRATIC_C).probabilities
    model = {
        "logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000)),
        "boosting": lambda: HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, random_state=0),
        "mlp": lambda: make_pipeline(
            StandardScaler(),
            MLPClassifier((32,), alpha=1e-3, max_iter=500, random_state=0, early_stopping=True),
        ),
    }[kind]()
    model.fit(x, y)
    return lambda v: model.predict_proba(v)[:, 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/qa-answerability", help="index and ranking cache")
    parser.add_argument("--write", action="store_true", help=f"save the shipped model to {MODEL_FILE}")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows, split = squad2_rows(work)
    part = {name: [r for r in rows if r["article"] in titles] for name, titles in split.items()}
    train = part["train"]
    real = {
        name: [r for r in part[name] if not r["swapped"] and not r["off_topic"]]
        for name in ("calibration", "held-out")
    }
    off_topic = [r for r in part["held-out"] if r["off_topic"]]
    print(f"train {len(train)} questions ({sum(r['swapped'] for r in train)} constructed near misses)")
    print("held-out articles; threshold keeps 95% of the calibration articles' right answers")
    print(
        "model               constructed  best unit holds  threshold  answerable right  unanswerable abstained"
        "  off-topic abstained"
    )
    for kind in ("logistic", "quadratic logistic", "boosting", "mlp"):
        for with_constructed in (False, True):
            constructed = [r for r in train if with_constructed or not (r["swapped"] or r["off_topic"])]
            predict = predictor(kind, *training_matrix(constructed))
            threshold = keep_right_threshold(*question_level(real["calibration"], predict))
            p, right, answerable = question_level(real["held-out"], predict)
            holds = (right & answerable).sum() / answerable.sum()
            good, abstained = rates(p, right, answerable, threshold)
            away = float(
                (predict(np.asarray([r["x"][0] for r in off_topic if len(r["x"])])) < threshold).mean()
            )
            print(
                f"{kind:19} {with_constructed!s:11}  {holds:15.1%}  {threshold:9.3f}  {good:16.1%}  {abstained:22.1%}"
                f"  {away:19.1%}"
            )

    head = Head.fit(*training_matrix(train), c=QUADRATIC_C)
    threshold = keep_right_threshold(*question_level(real["calibration"], head.probabilities))
    p, right, answerable = question_level(real["held-out"], head.probabilities)
    print("shipped (quadratic logistic with constructed negatives), held-out articles:")
    print("  threshold  right  abstained")
    for t in np.arange(0.05, 1.0, 0.05):
        good, abstained = rates(p, right, answerable, t)
        print(f"  {t:9.2f}  {good:5.1%}  {abstained:9.1%}")

    # Korean questions over English passages: the first half (by question) trains and
    # calibrates a head on the features that do not compare words; the second is reported.
    xor = xor_tydi_rows(work)
    first, second = xor[: len(xor) // 2], xor[len(xor) // 2 :]
    cross = Head.fit(*training_matrix(first), c=QUADRATIC_C, language_free=True)
    cross_threshold = keep_right_threshold(*question_level(first, cross.probabilities))
    p, right, answerable = question_level(second, cross.probabilities)
    holds = (right & answerable).sum() / answerable.sum()
    good, abstained = rates(p, right, answerable, cross_threshold)
    print(
        f"XOR-TyDi ko→en second half: best unit holds {holds:.1%}; threshold {cross_threshold:.3f}: "
        f"right {good:.1%}, unanswerable abstained {abstained:.1%} of {(~answerable).sum()}"
    )
    model = AnswerabilityModel(
        replace(head, threshold=round(threshold, 4)),
        replace(cross, threshold=round(cross_threshold, 4)),
        split,
    )
    if args.write:
        MODEL_FILE.write_text(model.to_json() + "\n", encoding="utf-8")
        print(f"wrote {MODEL_FILE}, sha256: {hashlib.sha256(MODEL_FILE.read_bytes()).hexdigest()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
