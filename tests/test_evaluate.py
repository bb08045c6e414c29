"""`qa eval` on BEIR-format and SQuAD-format data, on tiny real files the tests write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.cli import main
from qa.evaluate import score_ranking


def test_score_ranking_matches_hand_computed_values():
    perfect = score_ranking(["a", "b", "x"], {"a": 1, "b": 1})
    assert perfect.ndcg_at_10 == pytest.approx(1.0) and perfect.mrr_at_10 == 1.0
    second = score_ranking(["x", "a"], {"a": 1})
    assert second.ndcg_at_10 == pytest.approx(1 / 1.5849625, rel=1e-6)  # 1/log2(3)
    assert second.mrr_at_10 == 0.5 and second.recall_at_10 == 1.0
    missed = score_ranking(["x"] * 5, {"a": 1})
    assert (missed.ndcg_at_10, missed.recall_at_100, missed.mrr_at_10) == (0.0, 0.0, 0.0)


DOCS = {
    "d1": ("Penguins of Antarctica", "Emperor penguins breed during the Antarctic winter on sea ice."),
    "d2": ("Volcanic soils", "Andisols form from volcanic ash and hold water unusually well."),
    "d3": ("Honeybee navigation", "Foraging honeybees use the sun as a compass and a waggle dance."),
    "d4": ("Tidal energy", "Tidal barrages turn the rise and fall of the sea into electricity."),
}
QUERIES = {"q1": "When do emperor penguins breed?", "q2": "How do bees find their way?"}


@pytest.fixture
def beir_dir(tmp_path):
    root = tmp_path / "tinybeir"
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w") as out:
        for doc_id, (title, text) in DOCS.items():
            out.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (root / "queries.jsonl").open("w") as out:
        for query_id, text in QUERIES.items():
            out.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\r\nq1\td1\t1\r\nq2\td3\t1\r\n")
    return root


def test_eval_beir_reports_every_mode(beir_dir, tmp_path, capsys):
    out_file = tmp_path / "beir.json"
    argv = ["eval", "--beir", str(beir_dir), "--work", str(tmp_path / "work"), "--out", str(out_file)]
    assert main(argv) == 0
    table = capsys.readouterr().out
    for mode in ("dense", "lexical", "hybrid", "hybrid+rerank"):
        assert mode in table
    report = json.loads(out_file.read_text())
    assert report["queries"] == 2 and report["documents"] == 4
    assert report["modes"]["hybrid+rerank"]["ndcg_at_10"] == pytest.approx(1.0)


def _tiny_island(path: Path, questions: list[dict]) -> Path:
    """A one-paragraph SQuAD file with ``questions`` about it, written to ``path``."""
    context = (
        "The ferry to Tiny Island leaves from Port Alder. The crossing takes forty minutes. "
        "The island's lighthouse was built in 1874 by the harbour board."
    )
    data = {"data": [{"title": "Tiny_Island", "paragraphs": [{"context": context, "qas": questions}]}]}
    path.write_text(json.dumps(data))
    return path


def test_eval_squad_measures_composed_answers(tmp_path, capsys):
    path = _tiny_island(
        tmp_path / "squad.json",
        [
            {"id": "1", "question": "When was the island's lighthouse built?",
             "answers": [{"text": "1874", "answer_start": 0}]},
            {"id": "2", "question": "Where does the ferry to Tiny Island leave from?",
             "answers": [{"text": "Port Alder", "answer_start": 0}]},
        ],
    )  # fmt: skip
    assert main(["eval", "--squad", str(path), "--every", "1", "--work", str(tmp_path / "w"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["questions"] == 2 and report["paragraphs"] == 1
    assert report["answer_contains_gold"] == 1.0 and report["gold_paragraph_cited"] == 1.0
    assert report["short_answers"] == 1.0 and report["short_answers_right"] == 1.0  # "1874", "Port Alder"


def test_eval_squad2_reports_both_kinds_of_question_and_the_trade_off(tmp_path, capsys):
    path = _tiny_island(
        tmp_path / "squad2.json",
        [
            {"id": "1", "question": "When was the island's lighthouse built?",
             "answers": [{"text": "1874", "answer_start": 0}], "is_impossible": False},
            {"id": "2", "question": "When was the island's airport built?",
             "answers": [], "is_impossible": True},
        ],
    )  # fmt: skip
    assert main(["eval", "--squad2", str(path), "--work", str(tmp_path / "w"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["answerable"], report["unanswerable"], report["paragraphs"]) == (1, 1, 1)
    assert report["answerable_right"] == 1.0 and report["short_exact_match"] == 1.0  # "1874"
    assert [row[0] for row in report["trade_off"]][:2] == [0.05, 0.1]
    assert report["trade_off"][-1][2] >= report["trade_off"][0][2], "a higher threshold abstains more"
    assert main(["eval", "--squad2", str(path), "--articles", "nonsense", "--work", str(tmp_path / "w")]) == 1
    assert "--articles must be all or one of train, calibration, held-out" in capsys.readouterr().err
