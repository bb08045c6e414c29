"""A build embeds the dense and the cross-lingual space at the same time (issue 13): the
vectors are those of encoding each space alone, progress still reads as one stage after the
other, the encoders' thread settings are given back, and a failure on the second thread
fails the build with the index unchanged."""

from __future__ import annotations

import pytest

from qa.build import CONCURRENT_EMBED, _concurrent_embed, build_index
from qa.config import Settings
from qa.store import open_index
from tests.fakes import HashingEncoder

TEXTS = [
    f"Report {n}: the harbour crane {n % 7} lifted {n * 3} containers onto ferry {n % 5}."
    for n in range(CONCURRENT_EMBED)
]


@pytest.mark.slow
def test_both_models_encode_at_once_with_the_vectors_they_give_alone(encoder, multilingual_encoder):
    alone = encoder.encode(TEXTS), multilingual_encoder.encode(TEXTS)
    seen: list[tuple[str, int, int]] = []
    dense, cross_lingual = _concurrent_embed(
        encoder, multilingual_encoder, TEXTS, lambda stage, done, total: seen.append((stage, done, total))
    )
    assert dense == pytest.approx(alone[0], abs=1e-4)
    assert cross_lingual == pytest.approx(alone[1], abs=1e-4)
    stages = [stage for stage, _, _ in seen]
    assert stages == sorted(stages, key=["embed", "embed-multilingual"].index), "one stage after the other"
    for stage in ("embed", "embed-multilingual"):
        counts = [done for s, done, total in seen if s == stage]
        assert counts == sorted(counts) and counts[-1] == len(TEXTS)
    assert encoder.threads is None and multilingual_encoder.threads is None  # the shared settings back


class BrokenEncoder(HashingEncoder):
    name = "test/broken"

    def encode(self, texts, *, progress=None):
        raise RuntimeError("the cross-lingual model fell over")


def test_a_failure_on_the_cross_lingual_thread_fails_the_build_and_keeps_the_index(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "first.txt").write_text("First\n\nThe ferry leaves at dawn.\n")
    settings = Settings(model=HashingEncoder.name)
    encoders = {"encoder": HashingEncoder(), "multilingual_encoder": HashingEncoder()}
    build_index(corpus, tmp_path / "index", settings=settings, **encoders)
    for n, text in enumerate(TEXTS):
        (corpus / f"report{n}.txt").write_text(f"Report {n}\n\n{text}\n")
    with pytest.raises(RuntimeError, match="fell over"):
        build_index(
            corpus,
            tmp_path / "index",
            settings=settings,
            encoder=HashingEncoder(),
            multilingual_encoder=BrokenEncoder(),
        )
    assert [d.source for d in open_index(tmp_path / "index").documents()] == ["first.txt"]
