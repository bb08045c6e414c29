"""Benchmark 3 (query latency) and 4 (memory, start-up): warm ``Engine.answer`` by stage.

    python -m benchmarks.query_latency                       # the demo corpus (built here)
    python -m benchmarks.query_latency --chunks 100000        # synthetic 100k-chunk index
    python -m benchmarks.query_latency --chunks 1000000       # synthetic 1M-chunk index
    python -m benchmarks.query_latency --index PATH           # any existing index

Stages: embed query (``Retriever.query_vector``), dense search (FAISS), lexical search
(FTS5), fuse (the rest of ``Retriever.search``: fusion, rerank scores, chunk fetch), compose.
Questions: the dev set plus SQuAD questions for the demo corpus; SciFact test claims for the
synthetic (SciFact-based) indexes. Each question is asked once after a warm-up; p50/p95 are
over all questions. Memory and start-up are measured in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._common import (
    DEV_SET,
    ROOT,
    LoadMonitor,
    append_results,
    cache_dir,
    percentile,
    rss_mb,
    scifact_queries,
    squad_questions,
)

STAGES = ("embed query", "dense search", "lexical search", "fuse", "compose", "total")


class StageClock:
    """Wraps the pipeline's methods to time each stage of one answer."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)

    def wrap(self, owner: Any, name: str, stage: str) -> None:
        original: Callable[..., Any] = getattr(owner, name)
        clock = self

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                clock.current[stage] += time.perf_counter() - started

        setattr(owner, name, timed)


def instrument() -> StageClock:
    from qa.retrieve import Query, Retriever
    from qa.store import Index

    clock = StageClock()
    clock.wrap(Query, "embed", "embed query")
    clock.wrap(Index, "search_dense", "dense search")
    clock.wrap(Index, "search_multilingual", "dense search")
    clock.wrap(Index, "search_lexical", "lexical search")
    clock.wrap(Retriever, "search", "retriever total")
    return clock


def run_questions(index_dir: Path, questions: list[str], warmup: int) -> dict[str, list[float]]:
    from qa.pipeline import Engine

    clock = instrument()
    engine = Engine(index_dir)
    engine.warm_up()
    for question in questions[:warmup]:
        engine.answer(question)
    samples: dict[str, list[float]] = defaultdict(list)
    for question in questions[warmup:]:
        clock.current.clear()
        started = time.perf_counter()
        answer = engine.answer(question)
        total = time.perf_counter() - started
        stage = dict(clock.current)
        inside = stage.get("dense search", 0.0) + stage.get("lexical search", 0.0)
        samples["embed query"].append(stage.get("embed query", 0.0))
        samples["dense search"].append(stage.get("dense search", 0.0))
        samples["lexical search"].append(stage.get("lexical search", 0.0))
        samples["fuse"].append(stage.get("retriever total", 0.0) - inside)
        samples["compose"].append(answer.timings_ms["compose"] / 1000)
        samples["total"].append(total)
    return samples


def measure_startup(index_dir: Path, question: str) -> dict[str, float]:
    """Open the index and answer one question in a fresh process: start-up time and RSS."""
    code = f"""
import json, time, sys
sys.path.insert(0, {str(ROOT)!r})
from benchmarks._common import rss_mb
base = rss_mb()
import faiss, numpy, sqlite3
from qa.store import open_index
imported = rss_mb()
t = time.perf_counter(); index = open_index({str(index_dir)!r}); opened = time.perf_counter() - t
after_open = rss_mb()
from qa.pipeline import Engine
engine = Engine({str(index_dir)!r})
t = time.perf_counter(); engine.warm_up(); warm = time.perf_counter() - t
t = time.perf_counter(); engine.answer({question!r}); first = time.perf_counter() - t
for q in {[question] * 5!r}: engine.answer(q)
print(json.dumps(dict(open_s=opened, warm_up_s=warm, first_answer_s=first,
    rss_python_mb=imported, rss_index_mb=after_open - imported, rss_after_open_mb=after_open,
    rss_engine_mb=rss_mb())))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def demo_index() -> Path:
    from qa.build import build_index

    folder = Path(tempfile.mkdtemp(prefix="qa-demo-")) / "index"
    build_index(ROOT / "corpus", folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, help="an existing index (default: the demo corpus)")
    parser.add_argument("--chunks", type=int, help="make a synthetic index of this many chunks")
    parser.add_argument("--base", type=Path, help="base index for --chunks (default: SciFact)")
    parser.add_argument("--questions", type=int, default=120)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()

    from qa.store import open_index

    setup: list[tuple[str, str]] = []
    if args.chunks is not None:
        from benchmarks.synthetic import load_base, make_synthetic_index, scifact_base

        index_dir = cache_dir() / f"synthetic-{args.chunks}"
        if not (index_dir / "CURRENT").exists() or open_index(index_dir).chunk_count < args.chunks * 0.99:
            base = load_base(args.base if args.base is not None else scifact_base())
            timings = make_synthetic_index(index_dir, args.chunks, base)
            setup.append(("synthetic index written in", f"{timings['total_s']:.0f} s ({timings})"))
        questions = scifact_queries()
        label = f"synthetic {args.chunks:,} chunks"
    else:
        index_dir = args.index if args.index is not None else demo_index()
        dev = [json.loads(line)["question"] for line in DEV_SET.read_text().splitlines() if line.strip()]
        questions = dev + squad_questions()[:: max(1, 10_000 // args.questions)]
        label = "demo corpus" if args.index is None else str(args.index)
    questions = questions[: args.questions + args.warmup]
    index = open_index(index_dir)
    with LoadMonitor() as load:
        samples = run_questions(index_dir, questions, args.warmup)
        startup = measure_startup(index_dir, questions[0])

    table = [
        ("index", f"{label}: {index.chunk_count:,} chunks, vectors {index.vector_index_type}"),
        ("questions timed (after warm-up)", str(len(samples["total"]))),
        *setup,
    ]
    for stage in STAGES:
        values = [1000 * v for v in samples[stage]]
        table.append(
            (
                f"{stage} ms p50 / p95 / mean",
                f"{percentile(values, 50):.1f} / {percentile(values, 95):.1f} / {statistics.mean(values):.1f}",
            )
        )
    table += [
        ("open_index (fresh process, warm page cache)", f"{startup['open_s']:.2f} s"),
        ("Engine.warm_up (models load)", f"{startup['warm_up_s']:.2f} s"),
        ("RSS: Python + imports", f"{startup['rss_python_mb']:.0f} MiB"),
        ("RSS added by open_index", f"{startup['rss_index_mb']:.0f} MiB"),
        ("RSS after warm-up and 6 answers (models included)", f"{startup['rss_engine_mb']:.0f} MiB"),
    ]
    command = "python -m benchmarks.query_latency" + (
        f" --chunks {args.chunks}" if args.chunks else (f" --index {args.index}" if args.index else "")
    )
    append_results(
        f"Query latency: {label}",
        command,
        table,
        [
            load.summary(),
            f"this process RSS at the end {rss_mb():.0f} MiB",
            f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
        ],
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
