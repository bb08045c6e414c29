"""The shipped answer scorer: it loads offline, matches its data card, and on SQuAD 2.0
articles it was never trained or calibrated on it abstains on most near misses while
answering most answerable questions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from qa.answer_scorer import (
    DATA_CARD,
    MODEL_FILE,
    ScorerError,
    card_sha256,
    load_scorer,
    shipped_scorer,
    short_answer,
)
from qa.evaluate import NEVER_ABSTAIN, corpus_engine, evaluate_squad2, load_squad2

FIXTURE = Path(__file__).parent / "data" / "squad2_heldout_slice.json"


def test_the_shipped_weights_match_the_data_card_and_load_offline():
    assert hashlib.sha256(MODEL_FILE.read_bytes()).hexdigest() == card_sha256()
    scorer = shipped_scorer()
    assert 0.0 < scorer.threshold < 1.0 and 0.0 < scorer.cross_lingual_threshold < 1.0
    assert scorer.threshold <= scorer.conflict_probability < 1.0
    assert MODEL_FILE.stat().st_size < 1_000_000


def test_altered_weights_are_refused(tmp_path):
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    data["intercept"] += 1.0
    altered = tmp_path / "answer_scorer.json"
    altered.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ScorerError, match="sha256"):
        load_scorer(altered, DATA_CARD)


def test_the_fixture_comes_from_held_out_articles_only():
    titles = {article["title"] for article in json.loads(FIXTURE.read_text(encoding="utf-8"))["data"]}
    articles = shipped_scorer().articles
    assert titles <= set(articles["held-out"])
    assert not titles & (set(articles["train"]) | set(articles["calibration"]))


@pytest.mark.parametrize(
    ("question", "text", "value"),
    [
        ("When was the treaty signed?", "The war began in 1618, and the treaty was signed in 1648.", "1648"),
        (
            "How many ships did the navy lose?",
            "The navy lost 12 ships in a storm that lasted 3 days.",
            "12 ships",
        ),
        ("Where was the summit held?", "The summit was held in Brussels.", "Brussels"),
        ("When did it end?", "Talks went on in 1990 and 1991.", None),  # no clear one
        ("Why did the talks fail?", "The talks failed in 1990.", None),  # not a typed question
    ],
)
def test_the_short_answer_is_the_value_the_question_points_at(question, text, value):
    span = short_answer(question, text)
    assert (None if span is None else text[span[0] : span[1]]) == value


@pytest.mark.slow
def test_held_out_squad2_slice_abstains_on_near_misses_and_answers_the_rest(tmp_path, encoder):
    paragraphs, questions = load_squad2(FIXTURE)
    engine, _ = corpus_engine(paragraphs, tmp_path, thresholds=NEVER_ABSTAIN)
    report = evaluate_squad2(questions, engine, len(paragraphs), threshold=shipped_scorer().threshold)
    print(
        f"\nheld-out slice: answerable right {report.answerable_right:.1%}, "
        f"unanswerable abstained {report.unanswerable_abstained:.1%}, "
        f"median {report.median_answer_words} words"
    )
    assert (report.answerable, report.unanswerable) == (28, 28)
    # measured: 71% right, 14% abstained at the shipped threshold
    assert report.answerable_right >= 0.5 and report.unanswerable_abstained >= 0.05
    assert report.median_answer_words <= 40
    rates = {t: (right, abstained) for t, right, abstained in report.trade_off}
    assert rates[0.05][0] >= rates[0.95][0] and rates[0.05][1] <= rates[0.95][1]
