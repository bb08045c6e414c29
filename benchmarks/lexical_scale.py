"""Lexical (SQLite FTS5) search at scale, and what the postings budget costs in quality.

    python -m benchmarks.lexical_scale [--index SYNTHETIC_1M_INDEX] [--base SCIFACT_INDEX]

1. Speed: ``Index.search_lexical`` over SciFact's test claims on a large index (default: the
   cached synthetic 1M-chunk index), with the product's postings budget and with every term
   matched (the budget lifted), p50/p95 ms, one query at a time.
2. Quality: SciFact retrieval (nDCG@10, recall@100; 300 test queries) on the real SciFact
   index, unpruned vs pruned at the same *share* of the corpus as the budget is of a million
   chunks (2%), so the pruning bites as often as it would at a million chunks.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchmarks._common import LoadMonitor, append_results, cache_dir, percentile, scifact_queries


def timed_searches(index, questions: list[str], k: int = 30) -> list[float]:  # type: ignore[no-untyped-def]
    from qa.text import query_terms

    times = []
    for question in questions:
        started = time.perf_counter()
        index.search_lexical(query_terms(question), k)
        times.append(1000 * (time.perf_counter() - started))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, default=cache_dir() / "synthetic-1000000")
    parser.add_argument("--base", type=Path, default=cache_dir() / "scifact-base-all" / "index")
    parser.add_argument(
        "--beir", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/beir/scifact"
    )
    parser.add_argument("--queries", type=int, default=150)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    import qa.store.reader
    from qa.store import open_index

    budget = qa.store.reader.LEXICAL_POSTINGS_BUDGET
    questions = scifact_queries()[: args.queries]
    table: list[tuple[str, str]] = []
    with LoadMonitor() as load:
        if (args.index / "CURRENT").exists():
            index = open_index(args.index)
            label = f"{index.chunk_count:,} chunks"
            timed_searches(index, questions[:10])  # page cache and term counts warm
            pruned = timed_searches(index, questions)
            qa.store.reader.LEXICAL_POSTINGS_BUDGET = 10**12
            full = timed_searches(open_index(args.index), questions)
            qa.store.reader.LEXICAL_POSTINGS_BUDGET = budget
            table += [
                (f"{label}: every term matched, ms p50 / p95", f"{statistics.median(full):.0f} / {percentile(full, 95):.0f}"),
                (f"{label}: postings budget {budget:,}, ms p50 / p95", f"{statistics.median(pruned):.1f} / {percentile(pruned, 95):.1f}"),
            ]  # fmt: skip
        if (args.base / "CURRENT").exists() and (args.beir / "qrels").exists():
            from qa.config import RetrievalOptions
            from qa.evaluate import evaluate_retrieval, load_beir
            from qa.pipeline import Engine

            _, queries, qrels = load_beir(args.beir)
            modes = {
                "lexical": RetrievalOptions(dense=False, lexical=True, rerank=False),
                "hybrid+rerank": RetrievalOptions(dense=True, lexical=True, rerank=True),
            }
            chunks = open_index(args.base).chunk_count
            scaled = max(1, chunks * budget // 1_000_000)
            for name, value in (("every term", 10**12), (f"budget {scaled} postings (2% of chunks)", scaled)):
                qa.store.reader.LEXICAL_POSTINGS_BUDGET = value
                scores = evaluate_retrieval(queries, qrels, Engine(args.base), modes=modes)
                for mode, score in scores.items():
                    table.append(
                        (
                            f"SciFact {chunks:,} chunks, {mode}, {name}",
                            f"nDCG@10 {score.ndcg_at_10:.4f}, recall@100 {score.recall_at_100:.4f}",
                        )
                    )
            qa.store.reader.LEXICAL_POSTINGS_BUDGET = budget
    append_results(
        "Lexical search at scale",
        "python -m benchmarks.lexical_scale",
        table,
        [load.summary()],
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
