"""Korean lexical search: Hangul stored and searched as two-syllable pieces, so a word with a
particle glued to it (서울에서) finds other forms (서울의); older indexes migrate on the next
build without re-embedding anything."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest

from qa.store import open_index
from qa.store.reader import HANGUL_PIECES_FORMAT
from qa.text import lexical_form, lexical_terms, query_terms
from tests.conftest import fake_build
from tests.fakes import HashingEncoder

SEOUL = "서울 안내\n\n서울의 인구는 약 천만 명이다. The Han river crosses the city.\n"
BUSAN = "부산 안내\n\n부산은 항구 도시이다. The port ships containers.\n"


def test_hangul_runs_become_two_syllable_pieces_and_everything_else_stays():
    assert lexical_form("서울에서 1989년 Seoul").split() == ["서울", "울에", "에서", "1989", "년", "Seoul"]
    assert lexical_terms(query_terms("서울의 인구는? Seoul 서울")) == [
        "서울",
        "울의",
        "인구",
        "구는",
        "seoul",
    ]


@pytest.fixture()
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "seoul.txt").write_text(SEOUL, encoding="utf-8")
    (folder / "busan.txt").write_text(BUSAN, encoding="utf-8")
    return folder


def _sources(index, question: str) -> list[str]:
    ids = [chunk_id for chunk_id, _ in index.search_lexical(query_terms(question), 10)]
    return [index.chunks(ids)[i].chunk.source for i in ids]


def test_a_word_with_a_particle_finds_the_other_forms_of_it(corpus, tmp_path):
    fake_build(corpus, tmp_path / "index", HashingEncoder())
    index = open_index(tmp_path / "index")
    assert index.manifest.format >= HANGUL_PIECES_FORMAT
    assert _sources(index, "서울에서 인구가 몇 명이야?")[0] == "seoul.txt"  # 서울의 인구는 in the text
    assert _sources(index, "항구가 있는 도시는?")[0] == "busan.txt"
    assert _sources(index, "Han river") == ["seoul.txt"]  # Latin text is searched as before


def test_the_query_idf_is_bm25s_over_the_chunks_and_leaves_out_unknown_words(corpus, tmp_path):
    for n, topic in enumerate(["tides", "cranes", "ferries", "storms"]):
        (corpus / f"filler{n}.txt").write_text(f"Notes {n}\n\nThe port logs {topic} every day.\n")
    fake_build(corpus, tmp_path / "index", HashingEncoder())
    index = open_index(tmp_path / "index")
    n = index.chunk_count

    def idf(postings: int) -> float:
        return max(1e-6, math.log((n - postings + 0.5) / (postings + 0.5)))

    assert index.lexical_idf(["river"]) == pytest.approx(idf(1))
    assert n == 6 and idf(1) > 1.0
    assert index.lexical_idf(["river", "containers"]) == pytest.approx(2 * idf(1))
    assert index.lexical_idf(["river", "port"]) == pytest.approx(idf(1) + idf(5))
    assert index.lexical_idf(["river", "zeppelin"]) == pytest.approx(idf(1))  # no chunk holds zeppelin
    # 서울에서 is searched as 서울 (one chunk holds it), 울에 and 에서 (none does).
    assert index.lexical_idf(["서울에서"]) == pytest.approx(idf(1))

    # The share of the query's idf the index holds; a word no chunk holds counts as idf(0).
    assert index.lexical_coverage(["river", "port"]) == pytest.approx(1.0)
    assert index.lexical_coverage(["river", "zeppelin"]) == pytest.approx(idf(1) / (idf(1) + idf(0)))
    assert index.lexical_coverage(["서울에서"]) == pytest.approx(idf(1) / (idf(1) + 2 * idf(0)))
    assert index.lexical_coverage(["zeppelin"]) == index.lexical_coverage([]) == 0.0


def _make_format_3(index_dir) -> None:
    """Turn a fresh index into what qa wrote before format 4: whole words in the lexical
    index and format 3 in the manifest."""
    generation = index_dir / (index_dir / "CURRENT").read_text().strip()
    manifest = json.loads((generation / "manifest.json").read_text())
    manifest["format"] = 3
    (generation / "manifest.json").write_text(json.dumps(manifest))
    db = sqlite3.connect(generation / "store.sqlite")
    db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES('delete-all')")
    db.execute(
        "INSERT INTO chunks_fts(rowid, title, text) SELECT c.id, d.title, c.text "
        "FROM chunks c JOIN documents d ON d.source = c.source"
    )
    db.commit()
    db.close()


def test_an_older_index_is_searched_as_built_and_migrates_on_the_next_build(corpus, tmp_path):
    encoder = HashingEncoder()
    fake_build(corpus, tmp_path / "index", encoder)
    _make_format_3(tmp_path / "index")
    old = open_index(tmp_path / "index")
    assert old.manifest.format == 3
    assert _sources(old, "서울의 인구") == ["seoul.txt"]  # whole words match whole words
    assert _sources(old, "서울에서 인구가") == []  # the weakness format 4 removes

    (corpus / "daegu.txt").write_text("대구 안내\n\n대구는 사과로 유명하다.\n", encoding="utf-8")
    encoder.embedded.clear()
    report = fake_build(corpus, tmp_path / "index", encoder)
    assert report.added == ["daegu.txt"] and len(encoder.embedded) == report.embedded_chunks == 1
    migrated = open_index(tmp_path / "index")
    assert migrated.manifest.format >= HANGUL_PIECES_FORMAT
    assert _sources(migrated, "서울에서 인구가")[0] == "seoul.txt"  # a carried-over document
    assert _sources(migrated, "사과가 유명한 곳")[0] == "daegu.txt"
