"""Embedding on a real local Ray cluster (two worker processes) gives the index a local build
gives: the same chunks, vectors within cosine 0.9999, the same answers; a worker killed
mid-build is retried by Ray and the index is still complete and equal."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.build import build_index
from qa.cli import main
from qa.config import DEFAULT_MODEL, Settings
from qa.distributed import RayEncoder
from qa.embed import shared_encoder
from qa.errors import ClusterError
from qa.pipeline import Engine
from qa.store import Index, open_index
from qa.testing import chunk_store
from tests.conftest import CORPUS, DEV_SET, grow_corpus

WORKERS = 2
SAME_VECTOR = 0.9999  # cosine: a worker's single-threaded encode against a local one


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster with two worker CPUs, started once for this file."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'qa[ray]')")
    ray.init(address="local", num_cpus=WORKERS, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _vectors(index: Index, space: str) -> dict[tuple[str, int], np.ndarray]:
    """Each chunk's vector in ``space``, keyed by (source, ordinal): chunk ids may differ."""
    vectors = index.dense if space == "dense" else index.multilingual
    assert vectors is not None
    rows = chunk_store(index).execute("SELECT id, source, ordinal FROM chunks").fetchall()
    stored = vectors.reconstruct_batch(np.array([row[0] for row in rows], dtype=np.int64))
    return {(source, ordinal): vector for (_, source, ordinal), vector in zip(rows, stored, strict=True)}


def _assert_same_vectors(local: Index, remote: Index, space: str) -> float:
    expected, got = _vectors(local, space), _vectors(remote, space)
    assert sorted(got) == sorted(expected), "the same chunks"
    cosines = [float(np.dot(expected[key], got[key])) for key in expected]
    assert min(cosines) >= SAME_VECTOR, min(cosines)
    return min(cosines)


def _manifest(index: Index) -> dict:
    data = json.loads((index.path / "manifest.json").read_text())
    return {key: value for key, value in data.items() if key not in ("created", "corpus")}


@pytest.mark.slow
def test_a_ray_build_equals_a_local_one_and_answers_the_same(ray_cluster, demo_index, tmp_path):
    report = build_index(CORPUS, tmp_path / "index", ray="auto")
    local, remote = open_index(demo_index), open_index(tmp_path / "index")
    assert report.embedded_chunks == report.chunks == local.chunk_count
    assert _manifest(remote) == _manifest(local)
    for space in ("dense", "multilingual"):
        _assert_same_vectors(local, remote, space)
    questions = [json.loads(line)["question"] for line in DEV_SET.read_text().splitlines() if line.strip()]
    assert len(questions) == 12
    local_engine, remote_engine = Engine(demo_index), Engine(tmp_path / "index")
    for question in questions:
        expected, got = local_engine.answer(question), remote_engine.answer(question)
        assert (got.text, got.abstained) == (expected.text, expected.abstained), question


def _running_blocks() -> list[int]:
    """Worker processes of this test's cluster that are embedding a block right now."""
    mine = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        try:
            title = (entry / "cmdline").read_bytes().split(b"\0")[0]
            if title != b"ray::_encode_block":
                continue
            pid = entry.name
            while pid not in ("0", "1", mine):  # a descendant of this process?
                status = (Path("/proc") / pid / "status").read_text()
                pid = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
        except (OSError, StopIteration):
            continue
        if pid == mine:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_a_worker_killed_mid_build_is_retried_and_the_index_is_complete(ray_cluster, corpus_copy, tmp_path):
    grow_corpus(corpus_copy, 100)
    settings = Settings(multilingual=False)
    build_index(corpus_copy, tmp_path / "local", settings=settings)
    killed: list[int] = []

    def kill_a_worker(stage: str, done: int, total: int) -> None:
        if stage == "embed" and done > 0 and not killed:
            for pid in _running_blocks()[:1]:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

    # The smallest block that is cut like a local encode's (the int8 model's activations are
    # quantised per batch: smaller batches change the vectors): several tasks, so that one is
    # running when the first finishes.
    remote = RayEncoder(shared_encoder(DEFAULT_MODEL), address="auto", block=64)
    report = build_index(
        corpus_copy, tmp_path / "ray", settings=settings, encoder=remote, progress=kill_a_worker
    )
    assert killed, "no worker was embedding when the first block came back"
    local, distributed = open_index(tmp_path / "local"), open_index(tmp_path / "ray")
    assert report.chunks == distributed.chunk_count == distributed.dense.ntotal == local.chunk_count
    _assert_same_vectors(local, distributed, "dense")

    # Incremental: only the changed document goes to the cluster.
    edited = corpus_copy / "extra_0003.txt"
    edited.write_text("Extra report 3\n\nThe patrol plan was replaced by a quokka census.\n")
    again = build_index(corpus_copy, tmp_path / "ray", settings=settings, ray="auto")
    assert again.changed == ["extra_0003.txt"] and again.embedded_chunks == 1
    build_index(corpus_copy, tmp_path / "local", settings=settings)
    _assert_same_vectors(open_index(tmp_path / "local"), open_index(tmp_path / "ray"), "dense")


def test_without_ray_the_flag_says_how_to_install_it(corpus_copy, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as when it is not installed
    with pytest.raises(ClusterError, match=r"pip install 'qa\[ray\]'"):
        build_index(corpus_copy, tmp_path / "index", settings=Settings(multilingual=False), ray="auto")
    assert not list((tmp_path / "index").glob("gen-*")), "nothing was published"
    assert (
        main(["build", "--corpus", str(corpus_copy), "--index", str(tmp_path / "index"), "--ray", "auto"])
        == 1
    )
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "pip install 'qa[ray]'" in err, err


def test_qa_toml_and_qa_ray_choose_the_cluster(tmp_path, monkeypatch):
    from qa.cli import parse_args

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QA_RAY", raising=False)
    assert parse_args(["build"]).ray is None, "local unless asked"
    (tmp_path / "qa.toml").write_text('ray = "auto"\n')
    assert parse_args(["build"]).ray == "auto"
    monkeypatch.setenv("QA_RAY", "10.0.0.5:6379")
    assert parse_args(["build"]).ray == "10.0.0.5:6379"
    assert parse_args(["build", "--ray", "ray://head:10001"]).ray == "ray://head:10001"
