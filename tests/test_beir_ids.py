"""``qa eval --beir`` with document ids that are not file names (DBpedia-entity's)."""

from __future__ import annotations

import json

import pytest

from qa.cli import main
from qa.evaluate import document_file_stem

IDS = {
    "<dbpedia:McDonnell_Douglas_F/A-18_Hornet>": ("F/A-18 Hornet", "A twin-engine carrier fighter jet."),
    "<dbpedia:Quillon_(ferry)>": ("Quillon ferry", "The Quillon ferry crosses the harbour at dawn."),
    ".hidden?*:id": ("Barley", "Barley is a cereal grain grown in temperate climates."),
    "x" * 300: ("Lighthouse", "The lighthouse keeper trims the lamp wick every evening."),
}


def test_every_id_becomes_a_distinct_plain_visible_file_name():
    stems = [document_file_stem(doc_id) for doc_id in IDS]
    assert len(set(stems)) == len(stems)
    for stem in stems:
        assert "/" not in stem and not stem.startswith(".") and len(stem.encode()) <= 200
    assert document_file_stem("4983") == "4983" and document_file_stem("00_001") == "00_001"
    assert document_file_stem("<dbpedia:F/A-18>") == "%3Cdbpedia%3AF%2FA-18%3E"


@pytest.mark.slow
def test_eval_beir_scores_documents_whose_ids_are_not_file_names(tmp_path, capsys):
    data = tmp_path / "dbpedia-like"
    (data / "qrels").mkdir(parents=True)
    with (data / "corpus.jsonl").open("w") as corpus:
        for doc_id, (title, text) in IDS.items():
            corpus.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    queries = {
        "q1": "carrier fighter jet Hornet",
        "q2": "lighthouse lamp wick keeper",
        "q3": "cereal grain barley",
    }
    (data / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    )
    relevant = {"q1": "<dbpedia:McDonnell_Douglas_F/A-18_Hornet>", "q2": "x" * 300, "q3": ".hidden?*:id"}
    (data / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in relevant.items())
    )
    assert main(["eval", "--beir", str(data), "--work", str(tmp_path / "work"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["documents"] == 4 and report["queries"] == 3
    for mode in ("dense", "lexical", "hybrid+rerank"):
        assert report["modes"][mode]["mrr_at_10"] == pytest.approx(1.0), mode
