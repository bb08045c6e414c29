"""Benchmark 2: what a one-file change costs against a full build of a 10,000-document corpus.

    python -m benchmarks.incremental [--documents 10000] [--changes 5] [--multilingual]

The corpus is synthesised from SciFact abstracts (their first 600 characters), SQuAD
paragraphs and, to reach the count, documents of three random SQuAD sentences: short
documents, about one chunk each, keep the full build affordable on a 2-core machine. Full build from scratch (timed once), then repeatedly:
change one file, rebuild; delete one file, rebuild; add one file, rebuild; rebuild with
nothing changed. Each incremental figure is the median over ``--changes`` rebuilds, with its
stages (scan = hashing the corpus, read, embed, write = copy/commit of the new generation).
Dense only by default: the cross-lingual USE encoder doubles the full build's time without
changing what an incremental build does (``--multilingual`` to include it).
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks._common import LoadMonitor, append_results, scifact_documents, squad_paragraphs
from benchmarks.build_throughput import StageTimes


def synthesise(folder: Path, count: int, seed: int = 0) -> list[Path]:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    docs: list[tuple[str, str, str]] = []
    for doc_id, title, text in scifact_documents():
        docs.append((f"scifact/{doc_id}.txt", title, text[: text.rfind(". ", 0, 600) + 1] or text[:600]))
    for n, (title, paragraph) in enumerate(squad_paragraphs()):
        docs.append((f"squad/{n:05d}.txt", f"{title} ({n})", paragraph))
    sentences = [s for _, p in squad_paragraphs() for s in re.split(r"(?<=[.!?])\s+", p) if len(s) > 40]
    n = 0
    while len(docs) < count:
        docs.append((f"notes/{n:05d}.txt", f"Notes {n}", " ".join(rng.sample(sentences, 3))))
        n += 1
    paths = []
    for name, title, text in docs[:count]:
        path = folder / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"{title}\n\n{text}\n")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=5, help="rebuilds per kind of change")
    parser.add_argument("--multilingual", action="store_true")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    from qa.build import build_index
    from qa.config import Settings
    from qa.embed import shared_encoder

    settings = Settings(multilingual=args.multilingual)
    work = Path(tempfile.mkdtemp(prefix="qa-incremental-"))
    corpus, index_dir = work / "corpus", work / "index"
    paths = synthesise(corpus, args.documents)
    shared_encoder(settings.model).encode(["warm up"] * 32)

    def build() -> tuple[float, object, dict[str, float]]:
        stages = StageTimes()
        started = time.perf_counter()
        report = build_index(corpus, index_dir, settings=settings, progress=stages)
        finished = time.perf_counter()
        return finished - started, report, stages.durations(finished)

    rng = random.Random(1)
    results: dict[str, list[float]] = {}
    stage_log: dict[str, list[dict[str, float]]] = {}
    with LoadMonitor() as load:
        full_seconds, full_report, full_stages = build()
        print(f"full build: {full_seconds:.1f} s, {full_report}", flush=True)  # type: ignore[str-bytes-safe]
        for repeat in range(args.changes):
            changed = rng.choice(paths)
            changed.write_text(changed.read_text() + f"\nAn added sentence, edit number {repeat}.\n")
            deleted = paths.pop(rng.randrange(len(paths)))
            added = corpus / "added" / f"{repeat}.txt"
            added.parent.mkdir(exist_ok=True)
            for kind in ("change one file", "delete one file", "add one file", "nothing changed"):
                if kind == "delete one file":
                    deleted.unlink()
                elif kind == "add one file":
                    added.write_text(f"Added {repeat}\n\nA new document about quokkas, number {repeat}.\n")
                seconds, report, stages = build()
                results.setdefault(kind, []).append(seconds)
                stage_log.setdefault(kind, []).append(stages)
                print(f"{kind}: {seconds:.2f} s {stages} {report.summary()}", flush=True)  # type: ignore[attr-defined]

    chunks = full_report.chunks  # type: ignore[attr-defined]
    table = [
        ("corpus", f"{args.documents:,} documents, {chunks:,} chunks; multilingual={args.multilingual}"),
        ("full build", f"{full_seconds:.1f} s ({chunks / full_seconds:.1f} chunks/s); stages " + ", ".join(f"{k} {v:.1f}s" for k, v in full_stages.items())),
    ]  # fmt: skip
    for kind, values in results.items():
        median = statistics.median(values)
        stages = {
            k: statistics.median(run.get(k, 0.0) for run in stage_log[kind])
            for k in ("scan", "read", "embed", "write")
        }
        table.append(
            (
                f"{kind}: rebuild s (median of {len(values)})",
                f"{median:.2f} s = **{100 * median / full_seconds:.2f}%** of the full build (goal <= 2%); "
                + ", ".join(f"{k} {v:.2f}s" for k, v in stages.items() if v),
            )
        )  # fmt: skip
    command = f"python -m benchmarks.incremental --documents {args.documents} --changes {args.changes}" + (
        " --multilingual" if args.multilingual else ""
    )
    append_results("Incremental rebuild cost", command, table, [load.summary()], record=not args.no_record)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
