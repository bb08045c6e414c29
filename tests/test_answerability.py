"""The shipped answerability model: it loads offline, matches its data card, refuses altered
weights, and on SQuAD 2.0 articles it was never trained or calibrated on it abstains on many
near misses while answering most answerable questions."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from qa.answerability import DATA_CARD, MODEL_FILE, load_model, shipped_model
from qa.errors import ModelFileError
from qa.evaluate import NEVER_ABSTAIN, corpus_engine, evaluate_squad2, load_squad2

FIXTURE = Path(__file__).parent / "data" / "squad2_heldout_slice.json"


def test_the_shipped_weights_match_the_data_card_and_load_offline():
    stated = re.search(r"sha256: `([0-9a-f]{64})`", DATA_CARD.read_text(encoding="utf-8"))
    assert stated is not None and hashlib.sha256(MODEL_FILE.read_bytes()).hexdigest() == stated.group(1)
    model = shipped_model()
    assert 0.0 < model.threshold < 1.0 and 0.0 < model.cross_lingual_threshold < 1.0
    assert MODEL_FILE.stat().st_size < 100_000


def test_altered_weights_are_refused(tmp_path):
    data = json.loads(MODEL_FILE.read_text(encoding="utf-8"))
    data["same_language"]["bias"] += 1.0
    altered = tmp_path / "answerability.json"
    altered.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelFileError, match="sha256"):
        load_model(altered)
    data["features"] = data["features"][:-1]
    altered.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelFileError, match="other features"):
        load_model(altered, check=False)


def test_the_fixture_comes_from_held_out_articles_only():
    titles = {article["title"] for article in json.loads(FIXTURE.read_text(encoding="utf-8"))["data"]}
    articles = shipped_model().articles
    assert titles <= set(articles["held-out"])
    assert not titles & (set(articles["train"]) | set(articles["calibration"]))


@pytest.mark.slow
def test_held_out_squad2_slice_abstains_on_near_misses_and_answers_the_rest(tmp_path, encoder):
    paragraphs, questions = load_squad2(FIXTURE)
    engine, _ = corpus_engine(paragraphs, tmp_path, thresholds=NEVER_ABSTAIN)
    report = evaluate_squad2(questions, engine, len(paragraphs), threshold=shipped_model().threshold)
    print(
        f"\nheld-out slice: answerable right {report.answerable_right:.1%}, "
        f"unanswerable abstained {report.unanswerable_abstained:.1%}, "
        f"median {report.median_answer_words} words"
    )
    assert (report.answerable, report.unanswerable) == (28, 28)
    # measured at the shipped threshold: 85.7% right, 25.0% abstained, median 31.5 words
    assert report.answerable_right >= 0.6 and report.unanswerable_abstained >= 0.1
    assert report.median_answer_words <= 40
    rates = {t: (right, abstained) for t, right, abstained in report.trade_off}
    assert rates[0.05][0] >= rates[0.95][0] and rates[0.05][1] <= rates[0.95][1]
