"""The index on disk: incremental builds, settings checks, damage, and the build lock.

These use the fast hashing encoder; tests/test_answer.py covers the same paths on real models.
"""

from __future__ import annotations

import fcntl
import json

import numpy as np
import pytest

from qa.build import corpus_changes
from qa.config import Settings
from qa.errors import IndexBusyError, IndexCorruptError, IndexMismatchError, IndexNotFoundError
from qa.store import open_index
from qa.text import query_terms
from tests.conftest import fake_build
from tests.fakes import HashingEncoder


def _lexical_sources(index, text: str) -> set[str]:
    hits = index.search_lexical(query_terms(text), 50)
    return {chunk.chunk.source for chunk in index.chunks([i for i, _ in hits]).values()}


def test_first_build_then_nothing_to_do(corpus_copy, tmp_path, fake_encoder):
    index_dir = tmp_path / "index"
    report = fake_build(corpus_copy, index_dir, fake_encoder)
    assert len(report.added) == 5 and report.chunks == report.embedded_chunks > 5
    index = open_index(index_dir)
    assert index.chunk_count == report.chunks == index.dense.ntotal
    assert sorted(index.document_hashes) == sorted(p.name for p in corpus_copy.iterdir())

    fake_encoder.embedded.clear()
    again = fake_build(corpus_copy, index_dir, fake_encoder)
    assert (again.added, again.changed, again.removed, len(again.unchanged)) == ([], [], [], 5)
    assert fake_encoder.embedded == [] and again.embedded_chunks == 0
    assert open_index(index_dir).path == index.path, "no new generation when nothing changed"


def test_add_edit_delete_touch_only_those_documents(corpus_copy, tmp_path, fake_encoder):
    index_dir = tmp_path / "index"
    fake_build(corpus_copy, index_dir, fake_encoder)
    before = open_index(index_dir)

    (corpus_copy / "new.txt").write_text("Fresh news\n\nThe quokka delegation arrived in Busan.")
    edited = corpus_copy / "004_4fc778d844c30eeb.txt"
    edited.write_text("Edited article\n\nThe wombat treaty replaced everything said here.")
    (corpus_copy / "002_a91dc03dad779cfe.txt").unlink()
    assert corpus_changes(corpus_copy, before) == corpus_changes(corpus_copy, before)  # pure
    pending = corpus_changes(corpus_copy, before)
    assert (pending.added, pending.changed, pending.removed) == (
        ["new.txt"],
        ["004_4fc778d844c30eeb.txt"],
        ["002_a91dc03dad779cfe.txt"],
    )

    fake_encoder.embedded.clear()
    report = fake_build(corpus_copy, index_dir, fake_encoder)
    assert report.added == ["new.txt"]
    assert report.changed == ["004_4fc778d844c30eeb.txt"]
    assert report.removed == ["002_a91dc03dad779cfe.txt"]
    assert len(report.unchanged) == 3
    assert report.embedded_chunks == 2 == len(fake_encoder.embedded)
    assert all(("quokka" in t) or ("wombat" in t) for t in fake_encoder.embedded)

    index = open_index(index_dir)
    assert index.path != before.path
    # No stale chunk survives, in the chunk store, the lexical index or the vectors.
    assert _lexical_sources(index, "Yonhap Shin Won-sik") == {"001_ddccf97d934a6be5.txt"}
    assert _lexical_sources(index, "Wooyeal Paik unprecedentedly bold") == set()
    assert _lexical_sources(index, "quokka") == {"new.txt"}
    assert _lexical_sources(index, "wombat") == {"004_4fc778d844c30eeb.txt"}
    sources = {d.source: d.chunks for d in index.documents()}
    assert "002_a91dc03dad779cfe.txt" not in sources
    assert index.dense.ntotal == sum(sources.values()) == index.chunk_count
    ids = [int(i) for i in faiss_ids(index)]
    assert sorted(ids) == sorted(index.chunks(ids))


def faiss_ids(index) -> np.ndarray:
    import faiss

    return faiss.vector_to_array(index.dense.id_map)


def test_full_rebuild_and_settings_mismatch(corpus_copy, tmp_path, fake_encoder):
    index_dir = tmp_path / "index"
    fake_build(corpus_copy, index_dir, fake_encoder)
    other = Settings(model=fake_encoder.name, multilingual=False, chunk_size=300, chunk_overlap=50)
    with pytest.raises(IndexMismatchError, match=r"chunk_size 700 \(now 300\).*qa build --full"):
        fake_build(corpus_copy, index_dir, fake_encoder, settings=other)
    with pytest.raises(IndexMismatchError, match="qa build --full"):
        open_index(index_dir, settings=other)
    report = fake_build(corpus_copy, index_dir, fake_encoder, settings=other, full=True)
    assert len(report.added) == 5
    assert open_index(index_dir, settings=other).settings["chunk_size"] == 300
    other_model = Settings(model="some/other-model", multilingual=False)
    with pytest.raises(IndexMismatchError, match="model"):
        open_index(index_dir, settings=other_model)


def test_missing_index_says_to_build(tmp_path):
    with pytest.raises(IndexNotFoundError, match="Run 'qa build'"):
        open_index(tmp_path / "index")


@pytest.mark.parametrize("damage", ["truncate-vectors", "edit-manifest", "delete-store", "bad-current"])
def test_damaged_index_names_the_fix(corpus_copy, tmp_path, fake_encoder, damage):
    index_dir = tmp_path / "index"
    fake_build(corpus_copy, index_dir, fake_encoder)
    generation = open_index(index_dir).path
    if damage == "truncate-vectors":
        data = (generation / "dense.faiss").read_bytes()
        (generation / "dense.faiss").write_bytes(data[: len(data) // 2])
    elif damage == "edit-manifest":
        manifest = json.loads((generation / "manifest.json").read_text())
        manifest["chunks"] += 3
        (generation / "manifest.json").write_text(json.dumps(manifest))
    elif damage == "delete-store":
        (generation / "store.sqlite").unlink()
    else:
        (index_dir / "CURRENT").write_text("../../etc")
    with pytest.raises(IndexCorruptError, match="qa build --full"):
        open_index(index_dir)
    # The fix works: a full rebuild replaces the damaged generation.
    fake_build(corpus_copy, index_dir, fake_encoder, full=True)
    assert open_index(index_dir).chunk_count > 0


def test_a_second_build_is_refused_while_one_runs(corpus_copy, tmp_path, fake_encoder):
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    with open(index_dir / ".lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(IndexBusyError, match="Another 'qa build'"):
            fake_build(corpus_copy, index_dir, fake_encoder)
    fake_build(corpus_copy, index_dir, fake_encoder)


def test_unreadable_and_empty_files_are_skipped_and_the_build_completes(corpus_copy, tmp_path, fake_encoder):
    (corpus_copy / "empty.txt").write_text("")
    (corpus_copy / "binary.txt").write_bytes(bytes(range(256)) * 50)
    (corpus_copy / "dangling.md").symlink_to(tmp_path / "nowhere.md")
    report = fake_build(corpus_copy, tmp_path / "index", fake_encoder)
    assert {s.source for s in report.skipped} == {"empty.txt", "binary.txt", "dangling.md"}
    assert len(report.added) == 5
    assert "empty.txt" not in open_index(tmp_path / "index").document_hashes


def test_a_changed_file_that_became_unreadable_leaves_no_stale_chunks(corpus_copy, tmp_path, fake_encoder):
    index_dir = tmp_path / "index"
    fake_build(corpus_copy, index_dir, fake_encoder)
    (corpus_copy / "004_4fc778d844c30eeb.txt").write_bytes(b"")
    report = fake_build(corpus_copy, index_dir, fake_encoder)
    assert report.removed == ["004_4fc778d844c30eeb.txt"]
    assert [s.source for s in report.skipped] == ["004_4fc778d844c30eeb.txt"]
    assert _lexical_sources(open_index(index_dir), "Shin Won-sik") == set()


def test_readers_keep_their_generation_and_see_the_new_one_after_commit(corpus_copy, tmp_path):
    encoder = HashingEncoder()
    index_dir = tmp_path / "index"
    fake_build(corpus_copy, index_dir, encoder)
    reader = open_index(index_dir)
    (corpus_copy / "new.txt").write_text("Added later\n\nA platypus summit met in Hobart.")
    fake_build(corpus_copy, index_dir, encoder)
    assert reader.is_stale()
    assert _lexical_sources(reader, "platypus") == set(), "an open generation never changes"
    assert _lexical_sources(open_index(index_dir), "platypus") == {"new.txt"}


MANIFEST_KEYS = {"format", "created", "corpus", "settings", "chunker_version", "dense", "multilingual",
                 "vectors", "chunks", "documents"}  # fmt: skip


def test_the_manifest_format_is_unchanged_and_reads_back_whole(corpus_copy, tmp_path, fake_encoder):
    from qa.records import Manifest

    fake_build(corpus_copy, tmp_path / "index", fake_encoder)
    index = open_index(tmp_path / "index")
    data = json.loads((index.path / "manifest.json").read_text())
    assert set(data) == MANIFEST_KEYS and data["format"] == 4  # 4: Hangul in pieces in the lexical index
    assert data["dense"] == {"model": fake_encoder.name, "dimension": fake_encoder.dimension}
    assert data["vectors"] == {"dense": "flat", "multilingual": None} and data["multilingual"] is None
    assert Manifest.from_json(data).to_json() == data
    assert index.manifest.build_settings == Settings(model=fake_encoder.name, multilingual=False)


def test_a_format_1_manifest_still_reads():
    """Format 1 kept the document hashes in the manifest and had no vector types."""
    from qa.records import Manifest, ModelInfo

    old = {"format": 1, "created": "2024-10-01T10:00:00+0000", "corpus": "/corpus",
           "settings": Settings().build_signature(), "dense": {"model": "m", "dimension": 384},
           "multilingual": {"model": "u", "dimension": 512}, "chunks": 7,
           "documents": {"a.txt": "0" * 64, "b.txt": "1" * 64}}  # fmt: skip
    manifest = Manifest.from_json(old)
    assert (manifest.documents, manifest.chunks, manifest.chunker_version) == (2, 7, 0)
    assert manifest.multilingual == ModelInfo("u", 512)
    assert (manifest.vectors.dense, manifest.vectors.multilingual) == ("flat", "flat")


def test_a_build_without_settings_keeps_the_ones_the_index_was_built_with(
    corpus_copy, tmp_path, fake_encoder
):
    from qa.build import build_index, settings_as_built

    index_dir = tmp_path / "index"
    assert settings_as_built(index_dir) == Settings(), "no index yet: the defaults"
    custom = Settings(model=fake_encoder.name, multilingual=False, chunk_size=300, chunk_overlap=50)
    fake_build(corpus_copy, index_dir, fake_encoder, settings=custom)
    (corpus_copy / "new.txt").write_text("Fresh news\n\nThe quokka delegation arrived in Busan.")
    report = build_index(corpus_copy, index_dir, encoder=fake_encoder)  # no settings: as built
    assert report.added == ["new.txt"]
    assert open_index(index_dir).manifest.build_settings == settings_as_built(index_dir) == custom
    with pytest.raises(IndexMismatchError, match="chunk_size 300 \\(now 700\\)"):
        build_index(corpus_copy, index_dir, settings=Settings(model=fake_encoder.name, multilingual=False),
                    encoder=fake_encoder)  # fmt: skip


_READER_CHILD = """
import sys
from qa.store import open_index
index = open_index(sys.argv[1])
print(index.path.name, flush=True)
sys.stdin.readline()  # the parent rebuilds meanwhile
print(len(index.documents()), flush=True)  # a first read, on a connection opened only now
sys.stdin.readline()
"""


def test_a_reader_in_another_process_keeps_its_generation_through_rebuilds(corpus_copy, tmp_path):
    """Replicas: a server process reading the index is not disturbed by any number of builds
    in another process; its generation goes at the first build after it closes it."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    encoder = HashingEncoder()
    index_dir = tmp_path / "index"
    fake_build(corpus_copy, index_dir, encoder)
    child = subprocess.Popen(
        [sys.executable, "-c", _READER_CHILD, str(index_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    assert child.stdin is not None and child.stdout is not None
    held = index_dir / child.stdout.readline().strip()
    for n in range(3):
        (corpus_copy / "new.txt").write_text(f"Added later\n\nSummit {n} met in Hobart.")
        fake_build(corpus_copy, index_dir, encoder)
    assert held.is_dir() and open_index(index_dir).path != held
    child.stdin.write("\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "5"
    child.stdin.write("\n")
    child.stdin.flush()
    assert child.wait(timeout=30) == 0

    (corpus_copy / "new.txt").write_text("Added later\n\nSummit 9 met in Hobart.")
    fake_build(corpus_copy, index_dir, encoder)
    generations = sorted(p.name for p in index_dir.glob("gen-*"))
    assert not held.exists() and len(generations) == 2, generations


def test_a_generation_retired_while_opening_gives_way_to_the_live_one(corpus_copy, tmp_path, monkeypatch):
    """A reader that read CURRENT just before a build retired that generation opens the live
    one instead of reporting a damaged index (across machines the window is wider)."""
    import qa.store.reader as reader

    encoder = HashingEncoder()
    index_dir = tmp_path / "index"
    for n in range(3):
        (corpus_copy / "new.txt").write_text(f"Added later\n\nSummit {n} met in Hobart.")
        fake_build(corpus_copy, index_dir, encoder)
    retired = index_dir / "gen-000001"
    assert not retired.exists()
    reads = iter([retired])
    live = reader.read_current
    monkeypatch.setattr(reader, "read_current", lambda directory: next(reads, None) or live(directory))
    assert open_index(index_dir).path == live(index_dir) == index_dir / "gen-000003"
    monkeypatch.setattr(reader, "read_current", lambda directory: retired)
    with pytest.raises(IndexCorruptError, match=r"missing generation 'gen-000001'.*qa build --full"):
        open_index(index_dir)  # CURRENT itself names it: damage, with the fix
