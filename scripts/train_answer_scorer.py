"""Reproduce the shipped answer scorer (qa/models/answer_scorer.json) from SQuAD 2.0.

    .venv/bin/pip install -e '.[train]'
    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_answer_scorer.py --write

Every paragraph of ../shared/data/squad2 becomes a document of one index, as in
``qa eval --squad2``; each question's candidates are the answer units of the passages the
real retriever returns, so the scorer learns on what it will see. Articles are split once,
by a fixed seed: train (model fitted), calibration (the abstention threshold chosen), held
out (reported). The script compares logistic regression (plain and with pairwise feature
products) and gradient boosting on the same features, prints held-out numbers for each and
the threshold trade-off, and with ``--write`` saves the logistic model it ships (numpy
inference) and prints the sha256 for the data card.
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
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

from qa import answer_scorer as scoring
from qa.build import build_index
from qa.config import DEFAULT_MODEL, Settings
from qa.embed import shared_encoder
from qa.evaluate import write_corpus_folder
from qa.pipeline import Engine

DATA = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "squad2"
    / "dev-v2.0.genuine-17articles.json"
)
SPLIT_SEED = 10
SPLIT_SIZES = {"train": 10, "calibration": 3, "held-out": 4}


def split_articles(titles: Sequence[str]) -> dict[str, list[str]]:
    order = sorted(titles)
    random.Random(SPLIT_SEED).shuffle(order)
    split, first = {}, 0
    for name, size in SPLIT_SIZES.items():
        split[name] = sorted(order[first : first + size])
        first += size
    return split


def load(path: Path) -> tuple[dict[str, tuple[str, str]], list[dict[str, Any]]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    paragraphs, questions = {}, []
    for a, article in enumerate(data):
        for p, paragraph in enumerate(article["paragraphs"]):
            paragraph_id = f"{a:02d}_{p:03d}"
            paragraphs[paragraph_id] = (article["title"].replace("_", " "), paragraph["context"])
            for qa in paragraph["qas"]:
                questions.append(
                    {
                        "question": qa["question"],
                        "article": article["title"],
                        "paragraph": paragraph_id,
                        "answers": sorted({x["text"] for x in qa["answers"]}),
                    }
                )
    return paragraphs, questions


def pools(
    questions: list[dict[str, Any]], engine: Engine | None, cache: Path
) -> list[list[scoring.Candidate]]:
    """Each question's shortlisted candidates, as ``compose`` will see them. The retrieved
    hits are cached (retrieval is most of the time); candidates are rebuilt from them."""
    if cache.is_file():
        all_hits = pickle.loads(cache.read_bytes())
    elif engine is None:
        raise SystemExit(f"No retrieval cache at {cache}: run scripts/train_answer_scorer.py first.")
    else:
        retriever = engine.retriever()
        options = engine.settings.retrieval
        all_hits = []
        for n, item in enumerate(questions):
            all_hits.append(retriever.search(item["question"], options))
            if n % 500 == 0:
                print(f"  retrieved {n}/{len(questions)}", file=sys.stderr)
        cache.write_bytes(pickle.dumps(all_hits))
    out = []
    for item, hits in zip(questions, all_hits, strict=True):
        pool = scoring.candidates(hits)
        cheap = scoring.cheap_scores(item["question"], pool)
        out.append([pool[i] for i in np.argsort(-cheap, kind="stable")[: scoring.SHORTLIST]])
    return out


class CachedSimilarity:
    """Embeds each distinct text once across all questions (most units recur)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.vectors: dict[str, np.ndarray] = pickle.loads(path.read_bytes()) if path.is_file() else {}
        self.encoder = shared_encoder(DEFAULT_MODEL)

    def add(self, texts: set[str]) -> None:
        missing = sorted(texts - self.vectors.keys())
        if missing:
            print(f"  embedding {len(missing)} texts", file=sys.stderr)
            for text, vector in zip(missing, self.encoder.encode(missing), strict=True):
                self.vectors[text] = vector
            self.path.write_bytes(pickle.dumps(self.vectors))

    def for_question(self, question: np.ndarray) -> scoring.Similarity:
        return lambda texts: np.asarray([self.vectors[t] @ question for t in texts])


def part_texts(pool: Sequence[scoring.Candidate]) -> set[str]:
    seen: set[str] = set()

    def collect(texts: Sequence[str]) -> np.ndarray:
        seen.update(texts)
        return np.zeros(len(texts))

    scoring.best_part_cosines(pool, collect)
    return seen


def label(item: dict[str, Any], candidate: scoring.Candidate) -> int:
    """1: the unit holds a gold answer (in the gold paragraph); 0: it does not; -1: it holds
    the answer's words elsewhere (ambiguous, left out of training)."""
    holds = any(a.casefold() in candidate.text.casefold() for a in item["answers"])
    if not holds:
        return 0
    return 1 if Path(candidate.hit.chunk.source).stem == item["paragraph"] else -1


def matrices(
    questions: list[dict[str, Any]], all_pools: list[list[scoring.Candidate]], similarity: CachedSimilarity
) -> list[dict[str, Any]]:
    encoder = similarity.encoder
    needed: set[str] = set()
    for pool in all_pools:
        needed |= part_texts(pool)
    similarity.add(needed)
    question_vectors = encoder.encode([q["question"] for q in questions])
    rows = []
    for item, pool, vector in zip(questions, all_pools, question_vectors, strict=True):
        if not pool:
            rows.append({"x": np.zeros((0, len(scoring.FEATURES))), "y": np.zeros(0), "holds": np.zeros(0)})
            continue
        whole, best = scoring.best_part_cosines(pool, similarity.for_question(vector))
        labels = np.asarray([label(item, c) for c in pool])
        holds = np.asarray([any(a.casefold() in c.text.casefold() for a in item["answers"]) for c in pool])
        rows.append({"x": scoring.features(item["question"], pool, whole, best), "y": labels, "holds": holds})
    return rows


# --- models ------------------------------------------------------------------------------


def fit_logistic(
    x: np.ndarray, y: np.ndarray, interactions: list[tuple[int, int]], c: float
) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    model = scoring.AnswerScorer(mean, scale, np.zeros(1), 0.0, tuple(interactions), 0.5, 0.5, 0.9, {})
    expanded = _expand(model, x)
    fitted = LogisticRegression(C=c, max_iter=2000).fit(expanded, y)
    return {
        "mean": mean,
        "scale": scale,
        "coefficients": fitted.coef_[0],
        "intercept": float(fitted.intercept_[0]),
        "interactions": interactions,
    }


def _expand(model: scoring.AnswerScorer, x: np.ndarray) -> np.ndarray:
    z = (x - model.mean) / model.scale
    if model.interactions:
        left, right = np.asarray(model.interactions).T
        z = np.hstack([z, z[:, left] * z[:, right]])
    return z


def logistic_scorer(params: dict[str, Any], threshold: float = 0.5) -> scoring.AnswerScorer:
    return scoring.AnswerScorer(
        params["mean"], params["scale"], params["coefficients"], params["intercept"],
        tuple(params["interactions"]), threshold, threshold, 0.9, {},
    )  # fmt: skip


def question_outcomes(
    rows: list[dict[str, Any]], questions: list[dict[str, Any]], predict
) -> dict[str, np.ndarray]:
    """Per question: P of the best unit, whether that unit holds a gold answer, answerable."""
    best_p, right, answerable = [], [], []
    for row, item in zip(rows, questions, strict=True):
        answerable.append(bool(item["answers"]))
        if len(row["y"]) == 0:
            best_p.append(0.0)
            right.append(False)
            continue
        p = predict(row["x"])
        best = int(np.argmax(p))
        best_p.append(float(p[best]))
        right.append(bool(row["holds"][best]))
    return {"p": np.asarray(best_p), "right": np.asarray(right), "answerable": np.asarray(answerable)}


def rates(outcome: dict[str, np.ndarray], threshold: float) -> tuple[float, float]:
    answered = outcome["p"] >= threshold
    a = outcome["answerable"]
    return float((answered & outcome["right"])[a].mean()), float((~answered)[~a].mean())


ANSWERS_KEPT = 0.95


def choose_threshold(outcome: dict[str, np.ndarray]) -> float:
    """The highest threshold at which the answerable questions answered right stay at
    ``ANSWERS_KEPT`` of their share without abstention: abstain as much as possible while
    giving up at most one right answer in twenty."""
    needed = ANSWERS_KEPT * rates(outcome, 0.0)[0]
    grid = np.round(np.arange(0.01, 0.99, 0.01), 2)
    return max((float(t) for t in grid if rates(outcome, float(t))[0] >= needed), default=0.0)


def balanced_threshold(outcome: dict[str, np.ndarray]) -> float:
    """The threshold with the best mean of answerable-right and unanswerable-abstained."""
    grid = np.round(np.arange(0.02, 0.99, 0.01), 2)
    return float(max(grid, key=lambda t: (sum(rates(outcome, float(t))), -t)))


def trade_off(outcome: dict[str, np.ndarray]) -> list[str]:
    lines = ["threshold  answerable right  unanswerable abstained"]
    for t in np.round(np.arange(0.05, 0.96, 0.05), 2):
        right, abstained = rates(outcome, float(t))
        lines.append(f"  {t:4.2f}        {right:6.1%}             {abstained:6.1%}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-answer-scorer"))
    parser.add_argument("--write", action="store_true", help="write qa/models/answer_scorer.json")
    parser.add_argument(
        "--cross-lingual",
        type=Path,
        help="with --write: choose the threshold of cross-lingual questions on the first half of "
        "the questions of this SQuAD-2.0-format file (../shared/data/xor-tydi-ko/ko-en.dev-half.json)",
    )
    parser.add_argument(
        "--fixture", type=Path, help="write the test slice of held-out articles here and stop"
    )
    args = parser.parse_args()
    if args.fixture is not None:
        write_fixture(args.data, args.fixture)
        return 0
    import torch

    torch.set_num_threads(1)
    started = time.time()
    paragraphs, questions = load(args.data)
    split = split_articles(sorted({q["article"] for q in questions}))
    args.work.mkdir(parents=True, exist_ok=True)
    write_corpus_folder(paragraphs, args.work / "corpus")
    print(
        build_index(
            args.work / "corpus", args.work / "index", settings=Settings(multilingual=False)
        ).summary(),
        file=sys.stderr,
    )
    engine = Engine(args.work / "index")
    all_pools = pools(questions, engine, args.work / "hits.pkl")
    # Feature rows of every question, for reruns of the fits; delete it after changing features or units.
    rows_cache = args.work / "rows.pkl"
    if rows_cache.is_file():
        rows = pickle.loads(rows_cache.read_bytes())
    else:
        rows = matrices(questions, all_pools, CachedSimilarity(args.work / "vectors.pkl"))
        rows_cache.write_bytes(pickle.dumps(rows))
    parts = {
        name: [i for i, q in enumerate(questions) if q["article"] in titles] for name, titles in split.items()
    }

    def stack(name: str) -> tuple[np.ndarray, np.ndarray]:
        x = np.vstack([rows[i]["x"] for i in parts[name]])
        y = np.concatenate([rows[i]["y"] for i in parts[name]])
        keep = y >= 0
        return x[keep], y[keep]

    x_train, y_train = stack("train")
    print(
        f"train: {len(parts['train'])} questions, {len(y_train)} units, {int(y_train.sum())} positive",
        file=sys.stderr,
    )
    n = len(scoring.FEATURES)
    all_pairs = [(i, j) for i in range(n) for j in range(i, n)]
    candidates: dict[str, Any] = {
        "logistic": fit_logistic(x_train, y_train, [], 1.0),
        "logistic+pairs": fit_logistic(x_train, y_train, all_pairs, 0.05),
    }
    predictors = {name: logistic_scorer(params).probabilities for name, params in candidates.items()}
    from sklearn.ensemble import HistGradientBoostingClassifier

    boosted = HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, max_leaf_nodes=15, random_state=SPLIT_SEED
    )
    boosted.fit(x_train, y_train)
    predictors["gradient boosting"] = lambda x: boosted.predict_proba(x)[:, 1]

    def outcomes(name: str, predict) -> dict[str, np.ndarray]:
        return question_outcomes([rows[i] for i in parts[name]], [questions[i] for i in parts[name]], predict)

    print(f"\narticles: {json.dumps(split)}")
    results = {}
    for name, predict in predictors.items():
        calibration = outcomes("calibration", predict)
        held_out = outcomes("held-out", predict)
        threshold = choose_threshold(calibration)
        right, abstained = rates(held_out, threshold)
        balanced = balanced_threshold(calibration)
        balanced_right, balanced_abstained = rates(held_out, balanced)
        ranked_right = float(held_out["right"][held_out["answerable"]].mean())
        results[name] = (threshold, right, abstained)
        print(
            f"{name:18} best unit holds the answer {ranked_right:.1%} | threshold {threshold:.2f}: answerable right "
            f"{right:.1%}, unanswerable abstained {abstained:.1%} | balanced threshold {balanced:.2f}: "
            f"{balanced_right:.1%}, {balanced_abstained:.1%}  (held-out; thresholds from calibration)"
        )
    chosen = max(("logistic", "logistic+pairs"), key=lambda k: sum(results[k][1:]))
    print(f"\nshipping {chosen} (numpy inference); held-out trade-off:")
    print("\n".join(trade_off(outcomes("held-out", predictors[chosen]))))
    if args.write:
        params = candidates[chosen]
        threshold = results[chosen][0]
        calibration = outcomes("calibration", predictors[chosen])
        document = {
            "features": list(scoring.FEATURES),
            "mean": params["mean"].round(6).tolist(),
            "scale": params["scale"].round(6).tolist(),
            "coefficients": params["coefficients"].round(6).tolist(),
            "intercept": round(params["intercept"], 6),
            "interactions": [list(p) for p in params["interactions"]],
            "threshold": threshold,
            "cross_lingual_threshold": threshold,
            "conflict_probability": conflict_probability(calibration, threshold),
            "split_seed": SPLIT_SEED,
            "articles": split,
        }
        write_weights(document)
        if args.cross_lingual is not None:
            document["cross_lingual_threshold"] = cross_lingual_threshold(args.cross_lingual, args.work)
            write_weights(document)
    print(f"({time.time() - started:.0f} s)", file=sys.stderr)
    return 0


def write_weights(document: dict[str, Any]) -> None:
    """Write the weights and put their sha256 on the data card's ``sha256:`` line."""
    raw = json.dumps(document, indent=None, separators=(",", ":")).encode()
    scoring.MODEL_FILE.parent.mkdir(exist_ok=True)
    scoring.MODEL_FILE.write_bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    card = scoring.DATA_CARD.read_text(encoding="utf-8")
    scoring.DATA_CARD.write_text(
        re.sub(r"sha256: `[0-9a-f]{64}`", f"sha256: `{digest}`", card), encoding="utf-8"
    )
    print(f"\nwrote {scoring.MODEL_FILE} ({len(raw):,} bytes) sha256: {digest}")


def cross_lingual_threshold(path: Path, work: Path) -> float:
    """The threshold rule of ``choose_threshold`` on the first half (by question) of a
    cross-lingual SQuAD 2.0 file, asked with the weights just written; the second half's
    numbers are printed for the data card."""
    from qa.evaluate import NEVER_ABSTAIN, corpus_engine, load_squad2

    scoring.reset_shipped_scorer()
    paragraphs, questions = load_squad2(path)
    engine, _ = corpus_engine(paragraphs, work / "cross-lingual", multilingual=True, thresholds=NEVER_ABSTAIN)
    distinct = list(dict.fromkeys(q.question for q in questions))
    first_half = set(distinct[: len(distinct) // 2])
    halves: dict[bool, dict[str, list[Any]]] = {True: {}, False: {}}
    for item in questions:
        result = engine.answer(item.question)
        half = halves[item.question in first_half]
        half.setdefault("p", []).append(result.evidence.get("answer_probability", 0.0))
        half.setdefault("answerable", []).append(bool(item.answers))
        text = result.text.casefold()
        half.setdefault("right", []).append(any(a.casefold() in text for a in item.answers))
    calibration, held_out = ({k: np.asarray(v) for k, v in halves[h].items()} for h in (True, False))
    threshold = choose_threshold(calibration)
    right, abstained = rates(held_out, threshold)
    print(
        f"cross-lingual threshold {threshold:.2f} (first half of {path.name}); second half: "
        f"{int(held_out['answerable'].sum())} answerable right {right:.1%}, "
        f"{int((~held_out['answerable']).sum())} unanswerable abstained {abstained:.1%}"
    )
    return threshold


CONFLICT_PRECISION = 0.8


def conflict_probability(outcome: dict[str, np.ndarray], threshold: float) -> float:
    """The lowest P (at least the threshold) above which ``CONFLICT_PRECISION`` of the best
    units on calibration articles hold a gold answer: a unit that sure may contradict another."""
    for p in np.round(np.arange(threshold, 0.99, 0.01), 2):
        chosen = outcome["p"] >= p
        if chosen.any() and outcome["right"][chosen].mean() >= CONFLICT_PRECISION:
            return float(p)
    return 0.99


FIXTURE_ARTICLES = 2
FIXTURE_PARAGRAPHS = 20  # per article
FIXTURE_QUESTIONS = 28  # answerable, and as many unanswerable


def write_fixture(path: Path, out: Path) -> None:
    """A small SQuAD 2.0 file for tests: the first paragraphs of two held-out articles and
    an even sample of their answerable and unanswerable questions."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    held_out = split_articles([a["title"] for a in data])["held-out"][:FIXTURE_ARTICLES]
    rng = random.Random(SPLIT_SEED)
    articles = []
    for article in data:
        if article["title"] not in held_out:
            continue
        paragraphs = article["paragraphs"][:FIXTURE_PARAGRAPHS]
        every = [(p, qa["id"], qa["is_impossible"]) for p, par in enumerate(paragraphs) for qa in par["qas"]]
        keep = set()
        for impossible in (False, True):
            ids = [i for _, i, flag in every if flag is impossible]
            keep |= set(rng.sample(ids, FIXTURE_QUESTIONS // FIXTURE_ARTICLES))
        articles.append(
            {
                "title": article["title"],
                "paragraphs": [
                    {"context": par["context"], "qas": [qa for qa in par["qas"] if qa["id"] in keep]}
                    for par in paragraphs
                ],
            }
        )
    document = {
        "version": "v2.0",
        "licence": "SQuAD 2.0 (Rajpurkar et al., 2018), CC BY-SA 4.0; a slice of the dev set's "
        "held-out articles, written by scripts/train_answer_scorer.py --fixture",
        "data": articles,
    }
    out.write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
