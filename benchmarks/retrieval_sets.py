"""Retrieval quality per mode on the shared Korean and SQuAD sets, through the product's
``Retriever`` over an index built with the default settings (issue 13: the default must not
score below the better single retriever on any set).

    python -m benchmarks.retrieval_sets korquad [--every 10] [--work .qa-eval]
    python -m benchmarks.retrieval_sets xor-tydi
    python -m benchmarks.retrieval_sets squad [--every 10]

Each paragraph becomes one file (as in ``benchmarks.korean_qa``, whose folders it shares, so
an index built by either is reused); every answerable question is searched in each mode and
its paragraphs ranked by their best chunk. Reported: nDCG@10 per mode over all questions and
over the held-out half (odd articles for KorQuAD and SQuAD, whose even articles chose the
cross-lingual weight; odd questions for XOR-TyDi).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks._common import SHARED_DATA, append_results
from benchmarks.korean_qa import SETS, load

SQUAD = SHARED_DATA / "squad" / "dev-v1.1.json"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("set", choices=sorted([*SETS, "squad"]))
    parser.add_argument("--every", type=int, default=None, help="every Nth question (default 10, XOR-TyDi 1)")
    parser.add_argument("--work", type=Path, default=Path(".qa-eval"))
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    every = args.every if args.every is not None else (1 if args.set == "xor-tydi" else 10)

    from qa.build import build_index
    from qa.evaluate import RETRIEVAL_MODES, evaluate_retrieval, write_corpus_folder
    from qa.pipeline import Engine

    paragraphs, questions = load(SQUAD if args.set == "squad" else SETS[args.set], every)
    folder = args.work / args.set
    write_corpus_folder(paragraphs, folder / "corpus")
    build_index(folder / "corpus", folder / "index")
    engine = Engine(folder / "index")
    answerable = [q for q in questions if q.gold]
    queries = {str(n): q.text for n, q in enumerate(answerable)}
    qrels = {str(n): dict.fromkeys(q.gold, 1) for n, q in enumerate(answerable)}
    if args.set == "xor-tydi":
        held_out = {n for n in queries if int(n) % 2}
    else:  # paragraph ids are "<article>_<paragraph>"
        held_out = {n for n, gold in qrels.items() if int(next(iter(gold))[:3]) % 2}

    def scores(ids: set[str]) -> dict[str, float]:
        chosen = {n: queries[n] for n in sorted(ids)}
        modes = evaluate_retrieval(chosen, {n: qrels[n] for n in chosen}, engine, modes=RETRIEVAL_MODES)
        return {name: result.ndcg_at_10 for name, result in modes.items()}

    everything, half = scores(set(queries)), scores(held_out)
    table = [(f"nDCG@10 {name}", f"{everything[name]:.3f} / {half[name]:.3f}") for name in RETRIEVAL_MODES]
    best_single = max(everything["dense"], everything["lexical"])
    best_half = max(half["dense"], half["lexical"])
    table.append(
        (
            "default (hybrid+rerank) minus the better single retriever",
            f"{everything['hybrid+rerank'] - best_single:+.3f} / {half['hybrid+rerank'] - best_half:+.3f}",
        )
    )
    table.insert(0, ("questions (all / held-out half)", f"{len(queries)} / {len(held_out)}"))
    command = f"python -m benchmarks.retrieval_sets {args.set}" + (f" --every {every}" if every != 10 else "")
    append_results(f"Retrieval per mode: {args.set}", command, table, [], record=not args.no_record)


if __name__ == "__main__":
    main()
