"""The default encoder: all-MiniLM-L6-v2 as shipped int8 ONNX, run without torch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from qa.config import DEFAULT_MODEL
from qa.embed import OnnxMiniLMEncoder, SentenceTransformerEncoder, shared_encoder
from qa.errors import ModelNotFoundError

TEXTS = [
    "What is the capital of Belgium?",
    "Brussels is the capital of Belgium and the seat of several European institutions.",
    "Vitamin D deficiency is associated with an increased risk of hip fractures in older adults.",
    " ".join(f"Sentence {n} of a long document about harbours, ferries and tides." for n in range(60)),
]


@pytest.mark.slow
def test_it_matches_the_sentence_transformers_model():
    onnx = OnnxMiniLMEncoder().encode(TEXTS)
    reference = SentenceTransformerEncoder(DEFAULT_MODEL).encode(TEXTS)
    assert onnx.shape == (len(TEXTS), 384) and onnx.dtype == np.float32
    assert np.allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    assert np.sum(onnx * reference, axis=1).min() > 0.985
    # The question is closest to its answer in both.
    assert np.argmax(onnx[1:] @ onnx[0]) == np.argmax(reference[1:] @ reference[0]) == 0


def test_the_default_model_loads_without_torch():
    code = (
        "import sys; from qa.embed import shared_encoder; from qa.config import DEFAULT_MODEL;"
        "v = shared_encoder(DEFAULT_MODEL).encode(['a question', 'an answer']);"
        "print(v.shape, 'torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["(2,", "384)", "False", "False"]
    assert isinstance(shared_encoder(DEFAULT_MODEL), OnnxMiniLMEncoder)


def test_a_missing_model_file_says_how_to_get_it(tmp_path):
    with pytest.raises(ModelNotFoundError, match="export_minilm_onnx"):
        OnnxMiniLMEncoder(model_file=tmp_path / "missing.onnx").encode(["x"])
