"""Benchmark 1: build throughput against the encoder's own speed, on the same texts.

    python -m benchmarks.build_throughput [--corpus PATH/corpus.jsonl] [--limit N] [--repeats 3]
                                          [--batch-size 32] [--full-default] [--sweep]

Each repeat builds a fresh dense-only index (``multilingual=False``) of the corpus and, in the
same process, runs ``SentenceTransformer.encode`` over exactly the texts the build embedded
(title-prefixed chunk texts, read back from the built index) with the same batch size. The
order alternates between repeats, so drift in machine load does not favour either side. The
ratio is computed per repeat (build chunks/s over raw chunks/s) and its median reported.

``--full-default`` also times the default build (with the cross-lingual USE index), and keeps
that index as the base of the synthetic large indexes (benchmarks/synthetic.py).
``--sweep`` times raw encode at several batch sizes on a sample first.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._common import (
    SCIFACT,
    LoadMonitor,
    append_results,
    cache_dir,
    scifact_documents,
    write_scifact_corpus,
)


class StageTimes:
    """A build progress callback that records when each stage was first and last seen."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: dict[str, float] = {}
        self.last: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        self.first.setdefault(stage, now)
        self.last[stage] = now

    def durations(self, finished: float) -> dict[str, float]:
        """Seconds from each stage's first report to the next stage's first report."""
        order = sorted(self.first, key=self.first.__getitem__)
        marks = [self.started] + [self.first[s] for s in order[1:]] + [finished]
        # The first report of "read" comes after the first file is read: count from the start.
        return {stage: marks[n + 1] - marks[n] for n, stage in enumerate(order)}


def embedded_texts(index_dir: Path) -> list[str]:
    from qa.chunking import embedding_text
    from qa.records import Chunk
    from qa.store import open_index
    from qa.testing import chunk_store

    rows = chunk_store(open_index(index_dir)).execute(
        "SELECT d.title, c.source, c.ordinal, c.start, c.end, c.text FROM chunks c "
        "JOIN documents d ON d.source = c.source ORDER BY c.id"
    )
    return [embedding_text(title, Chunk(*rest)) for title, *rest in rows]


def timed_build(corpus: Path, index_dir: Path, **kwargs: object) -> tuple[float, int, dict[str, float]]:
    from qa.build import build_index

    if index_dir.exists():
        shutil.rmtree(index_dir)
    stages = StageTimes()
    started = time.perf_counter()
    report = build_index(corpus, index_dir, progress=stages, full=True, **kwargs)  # type: ignore[arg-type]
    finished = time.perf_counter()
    return finished - started, report.chunks, stages.durations(finished)


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=SCIFACT, help="a BEIR corpus.jsonl")
    parser.add_argument("--limit", type=int, help="only the first N documents")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--full-default", action="store_true", help="also time the default build (USE too)")
    parser.add_argument("--sweep", action="store_true", help="raw encode at batch sizes 16..128 first")
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()

    from qa.config import MULTILINGUAL_MODEL, Settings
    from qa.embed import SentenceTransformerEncoder, shared_encoder

    documents = scifact_documents(args.corpus, limit=args.limit)
    work = Path(tempfile.mkdtemp(prefix="qa-build-bench-"))
    corpus = work / "corpus"
    write_scifact_corpus(corpus, documents)

    encoder = SentenceTransformerEncoder(batch_size=args.batch_size)
    model = encoder.model  # loading it sets the OpenMP wait policy before torch loads
    encoder.encode(["warm up"] * 64)
    dense_only = Settings(multilingual=False)

    def raw(texts: list[str], batch_size: int = args.batch_size) -> None:
        model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    table: list[tuple[str, str]] = []
    notes: list[str] = []
    with LoadMonitor() as load:
        if args.sweep:
            timed_build(corpus, work / "sweep", settings=dense_only, encoder=encoder)
            sample = embedded_texts(work / "sweep")[:1024]
            sizes = (16, 32, 64, 128)
            rates: dict[int, list[float]] = {b: [] for b in sizes}
            for _ in range(3):
                for size in sizes:
                    rates[size].append(len(sample) / timed(lambda size=size: raw(sample, size)))
            for size in sizes:
                table.append(
                    (
                        f"raw encode, batch {size}, 1,024 texts (median of 3)",
                        f"{statistics.median(rates[size]):.1f} texts/s",
                    )
                )

        builds, raws, ratios = [], [], []
        stage_runs: list[dict[str, float]] = []
        chunks = 0
        for repeat in range(args.repeats):
            index_dir = work / "index"
            if repeat % 2 == 0:
                seconds, chunks, stages = timed_build(corpus, index_dir, settings=dense_only, encoder=encoder)
                texts = embedded_texts(index_dir)
                raw_seconds = timed(lambda texts=texts: raw(texts))
            else:
                texts = embedded_texts(index_dir)  # the previous repeat's build: the same texts
                raw_seconds = timed(lambda texts=texts: raw(texts))
                seconds, chunks, stages = timed_build(corpus, index_dir, settings=dense_only, encoder=encoder)
            assert len(texts) == chunks
            builds.append(chunks / seconds)
            raws.append(len(texts) / raw_seconds)
            ratios.append(builds[-1] / raws[-1])
            stage_runs.append(stages)
            print(f"repeat {repeat + 1}: build {builds[-1]:.1f} chunks/s, raw encode {raws[-1]:.1f} texts/s, "
                  f"ratio {ratios[-1]:.3f}, stages {stages}", flush=True)  # fmt: skip

        import torch

        table += [
            ("corpus", f"{args.corpus.name}: {len(documents):,} documents, {chunks:,} chunks"),
            ("encoder", f"all-MiniLM-L6-v2 (torch), batch {args.batch_size}, {torch.get_num_threads()} threads"),
            ("build, dense only (chunks/s, median)", f"{statistics.median(builds):.1f}  (runs: {', '.join(f'{b:.1f}' for b in builds)})"),
            ("raw SentenceTransformer.encode, same texts (texts/s, median)", f"{statistics.median(raws):.1f}  (runs: {', '.join(f'{r:.1f}' for r in raws)})"),
            ("**build / raw encode (median of per-run ratios)**", f"**{statistics.median(ratios):.3f}**  (runs: {', '.join(f'{r:.3f}' for r in ratios)}; goal >= 0.90)"),
        ]  # fmt: skip
        for stage in ("scan", "read", "embed", "write"):
            values = [run.get(stage, 0.0) for run in stage_runs]
            table.append((f"build stage '{stage}' s (median)", f"{statistics.median(values):.1f}"))

        if args.full_default:
            multilingual = shared_encoder(MULTILINGUAL_MODEL)
            multilingual.encode(["warm up"])
            index_dir = work / "index-default"
            seconds, chunks, stages = timed_build(
                corpus, index_dir, settings=Settings(), encoder=encoder, multilingual_encoder=multilingual
            )
            texts = embedded_texts(index_dir)
            sample = texts[:: max(1, len(texts) // 512)]
            use_rate = len(sample) / timed(lambda: multilingual.encode(sample))
            table += [
                ("full default build (MiniLM + cross-lingual USE), chunks/s", f"{chunks / seconds:.1f} ({seconds:.0f} s)"),
                ("  of which embed (MiniLM) / embed-multilingual (USE) s", f"{stages.get('embed', 0):.0f} / {stages.get('embed-multilingual', 0):.0f}"),
                (f"  raw USE encode, {len(sample)} of the same texts", f"{use_rate:.1f} texts/s"),
            ]  # fmt: skip
            if args.limit is None and args.corpus == SCIFACT:
                keep = cache_dir() / "scifact-base-all"
                shutil.rmtree(keep, ignore_errors=True)
                keep.mkdir(parents=True)
                shutil.copytree(index_dir, keep / "index")
                notes.append(f"the default-build index is kept as the synthetic-index base in {keep}")
    notes.insert(0, load.summary())
    command = "python -m benchmarks.build_throughput" + (f" --limit {args.limit}" if args.limit else "") + (
        f" --repeats {args.repeats}" + (" --full-default" if args.full_default else "") + (" --sweep" if args.sweep else "")
    )  # fmt: skip
    append_results("Build throughput vs raw encode", command, table, notes, record=not args.no_record)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
