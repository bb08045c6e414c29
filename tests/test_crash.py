"""kill -9 during a real `qa build`: the previous index stays whole and usable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from qa.build import build_index
from qa.pipeline import Engine
from qa.store import open_index
from tests.conftest import ROOT, grow_corpus

QUESTION = "Which news agency did the ministry quote when reporting Shin's meeting?"


def _kill_build_after(marker: str, corpus, index_dir, delay: float) -> str:
    """Start `qa build`, wait for ``marker`` on its stderr, wait ``delay``, kill -9 it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "build", "--corpus", str(corpus), "--index", str(index_dir)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    seen = b""
    deadline = time.monotonic() + 120
    assert process.stderr is not None
    os.set_blocking(process.stderr.fileno(), False)
    while marker.encode() not in seen and process.poll() is None and time.monotonic() < deadline:
        seen += process.stderr.read(4096) or b""
        time.sleep(0.02)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return seen.decode(errors="replace")


@pytest.mark.slow
@pytest.mark.parametrize(("marker", "delay"), [("embedding", 0.5), ("writing the new index", 0.0)])
def test_kill_during_build_leaves_a_whole_index(
    corpus_copy, tmp_path, encoder, multilingual_encoder, marker, delay
):
    index_dir = tmp_path / "index"
    encoders = {"encoder": encoder, "multilingual_encoder": multilingual_encoder}
    build_index(corpus_copy, index_dir, **encoders)
    before = open_index(index_dir)
    engine = Engine(index_dir)
    expected = engine.answer(QUESTION)

    grow_corpus(corpus_copy, 40)
    output = _kill_build_after(marker, corpus_copy, index_dir, delay)
    assert marker in output, output[-2000:]

    after = open_index(index_dir)  # never a half-written generation
    if after.path == before.path:
        assert after.chunk_count == before.chunk_count
        assert engine.answer(QUESTION).text == expected.text
    else:  # the kill landed after the commit: the new generation is whole
        assert len(after.document_hashes) == 45
    assert after.dense.ntotal == after.chunk_count

    report = build_index(corpus_copy, index_dir, **encoders)  # the next build completes
    final = open_index(index_dir)
    assert len(final.document_hashes) == 45 and final.dense.ntotal == final.chunk_count
    assert not list(index_dir.glob(".staging-*")), "a crashed build's staging folder is cleaned up"
    assert engine.answer(QUESTION).text == expected.text
    assert report.chunks == final.chunk_count
