"""The command line, run in-process: each verb, its output, and its errors."""

from __future__ import annotations

import json

import pytest

from qa.cli import main


@pytest.fixture
def built(corpus_copy, tmp_path, capsys):
    index_dir = tmp_path / "index"
    assert main(["build", "--corpus", str(corpus_copy), "--index", str(index_dir)]) == 0
    out = capsys.readouterr()
    assert "added 5, changed 0, removed 0, unchanged 0, skipped 0" in out.out
    assert "embedding" in out.err, "a progress bar is drawn while embedding"
    return corpus_copy, index_dir


def test_build_is_incremental_and_reports_counts(built, capsys):
    corpus, index_dir = built
    (corpus / "extra.md").write_text("# Extra\n\nThe Hwarang exercise took place in Pohang.")
    (corpus / "bad.txt").write_bytes(b"\x00" * 64)
    assert main(["build", "--corpus", str(corpus), "--index", str(index_dir)]) == 0
    out = capsys.readouterr()
    assert "added 1, changed 0, removed 0, unchanged 5, skipped 1" in out.out
    assert "skipped bad.txt: binary data" in out.err


def test_ask_search_info(built, capsys):
    corpus, index_dir = built
    ask = [
        "ask",
        "Which news agency did the ministry quote when reporting Shin's meeting?",
        "--index",
        str(index_dir),
    ]
    assert main([*ask, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert "Yonhap" in answer["text"] and not answer["abstained"]
    assert {"source", "excerpt", "start", "end", "score", "title"} <= set(answer["citations"][0])

    assert main(ask) == 0
    out = capsys.readouterr().out
    assert "[1]" in out and "004_4fc778d844c30eeb.txt" in out

    assert main(["search", "cyber exercise Estonia", "-k", "3", "--index", str(index_dir)]) == 0
    out = capsys.readouterr().out
    assert out.count("chars ") == 3 and "004_4fc778d844c30eeb.txt" in out.splitlines()[0]

    (corpus / "004_4fc778d844c30eeb.txt").write_text("Rewritten\n\nNothing else remains here.")
    assert main(["info", "--index", str(index_dir)]) == 0
    out = capsys.readouterr().out
    assert "all-MiniLM-L6-v2" in out and "documents:  5" in out
    assert "changed  004_4fc778d844c30eeb.txt" in out


def test_errors_are_one_line_with_the_fix(tmp_path, capsys):
    assert main(["ask", "anything?", "--index", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: No index at") and "qa build" in err and err.count("\n") == 1
    assert "Traceback" not in err
    assert main(["build", "--corpus", str(tmp_path / "missing"), "--index", str(tmp_path / "i")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_eval_prints_the_score(demo_index, capsys, tmp_path):
    from tests.conftest import DEV_SET

    if not DEV_SET.is_file():
        pytest.skip("../shared is absent")
    out_file = tmp_path / "report.json"
    assert main(["eval", str(DEV_SET), "--index", str(demo_index), "--out", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "accuracy:" in out and "/12" in out
    assert json.loads(out_file.read_text())["questions"] == 12


def test_retrieval_stages_can_be_switched_off(demo_index, capsys):
    assert (
        main(["search", "cyber exercise Estonia", "--index", str(demo_index), "--no-dense", "--no-rerank"])
        == 0
    )
    out = capsys.readouterr().out
    assert "(lexical #1)" in out and "dense #" not in out
    assert main(["search", "cyber exercise Estonia", "--index", str(demo_index), "--no-lexical"]) == 0
    out = capsys.readouterr().out
    assert "(dense #1)" in out and "lexical #" not in out


def test_plain_build_keeps_the_index_settings(corpus_copy, tmp_path, capsys):
    index_dir = tmp_path / "index"
    common = ["--corpus", str(corpus_copy), "--index", str(index_dir), "--no-multilingual"]
    assert main(["build", *common, "--chunk-size", "400", "--chunk-overlap", "50"]) == 0
    (corpus_copy / "more.txt").write_text("More\n\nA short note about the Hwarang exercise in Pohang.")
    assert main(["build", "--corpus", str(corpus_copy), "--index", str(index_dir)]) == 0
    assert "added 1" in capsys.readouterr().out
    assert main(["build", *common, "--chunk-size", "500"]) == 1
    assert "qa build --full" in capsys.readouterr().err
