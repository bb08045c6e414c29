"""What one changed document costs on a large (synthetic) index: the build's own steps.

    python -m benchmarks.incremental_large [--index CACHE/synthetic-1000000] [--repeats 3]

A synthetic index has no corpus folder to rescan, so this drives the build's writer directly,
as ``build_index`` does after its scan: copy the live generation aside, remove one document,
add its new version (embedded with the real encoders), write, fsync and publish. The scan of
a real corpus folder (hashing every file: 0.45 s per 10,000 small files, see "Incremental
rebuild cost") comes on top. Works on a copy of the index, so the cached one stays as it was.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks._common import LoadMonitor, append_results, cache_dir


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, default=cache_dir() / "synthetic-1000000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    from qa.build import embed_chunks, stage_document
    from qa.config import MULTILINGUAL_MODEL, Settings
    from qa.embed import shared_encoder
    from qa.records import Document, ModelInfo
    from qa.store import open_index
    from qa.store.writer import GenerationWriter, publish

    work = Path(tempfile.mkdtemp(prefix="qa-incremental-large-", dir=args.index.parent))
    copy = work / "index"
    shutil.copytree(args.index, copy)
    live = open_index(copy)
    settings = Settings(multilingual=live.manifest.multilingual is not None)
    encoder = shared_encoder(settings.model)
    multilingual = shared_encoder(MULTILINGUAL_MODEL) if settings.multilingual else None
    encoder.encode(["warm up"])
    if multilingual is not None:
        multilingual.encode(["warm up"])
    sources = sorted(live.document_hashes)[:50]
    steps: dict[str, list[float]] = {}
    with LoadMonitor() as load:
        for repeat in range(args.repeats):
            previous = open_index(copy)
            source = sources[repeat]
            marks = [("start", time.perf_counter())]
            staging = copy / f".staging-bench-{repeat}"
            staging.mkdir()
            writer = GenerationWriter(staging, previous)
            marks.append(("copy store + read vectors", time.perf_counter()))
            text = previous.document_text(source) + f" An edit, number {repeat}."
            writer.remove_document(source)
            pending = stage_document(writer, Document(source, "Edited", text, f"edited-{repeat}"), settings)
            marks.append(("remove + add rows", time.perf_counter()))
            embed_chunks(writer, pending, encoder, multilingual, lambda stage, done, total: None)
            marks.append(("embed + update vector indexes", time.perf_counter()))
            writer.commit(
                settings=settings,
                corpus_dir=copy,
                dense=ModelInfo(encoder.name, encoder.dimension),
                multilingual=None
                if multilingual is None
                else ModelInfo(multilingual.name, multilingual.dimension),
            )
            marks.append(("write + fsync", time.perf_counter()))
            publish(copy, staging)
            marks.append(("publish", time.perf_counter()))
            for (_, before), (name, after) in itertools.pairwise(marks):
                steps.setdefault(name, []).append(after - before)
            steps.setdefault("total", []).append(marks[-1][1] - marks[0][1])
            print({name: round(values[-1], 2) for name, values in steps.items()}, flush=True)
    sizes = {p.name: p.stat().st_size for p in open_index(copy).path.iterdir()}
    table = [
        ("index", f"{live.chunk_count:,} chunks, vectors {live.vector_index_type}; files " + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in sizes.items())),
        *((f"{name} s (median of {len(values)})", f"{statistics.median(values):.2f}") for name, values in steps.items()),
    ]  # fmt: skip
    append_results(
        "Incremental change on a large index",
        f"python -m benchmarks.incremental_large --index {args.index}",
        table,
        [load.summary(), "writer steps only; add the corpus scan (hashing) of a real folder"],
        record=not args.no_record,
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
