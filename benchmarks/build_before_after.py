"""Build time of the same SciFact folder under two versions of qa, runs interleaved.

    python -m benchmarks.build_before_after --before /tmp/qa_before [--limit 300] [--repeats 3]

``--before`` is a folder holding another commit's ``qa`` package (for example
``git archive <commit> qa | tar -x -C /tmp/qa_before``); the other side is this tree. Each
repeat builds a fresh index of the first ``--limit`` SciFact abstracts (one .txt each, as a
user's folder looks) once with each version, alternating which goes first, each in its own
process with one thread, and records the wall time of ``build_index`` (reading, cleaning,
chunking, embedding with the real model, writing). Reported: the median seconds of each
and the ratio after/before.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._common import ROOT, LoadMonitor, append_results, scifact_documents, write_scifact_corpus

_CHILD = """
import json, sys, time, torch
torch.set_num_threads(1)
try:
    from qa.build import build_index
except ImportError:  # before the build moved out of the store
    from qa.store import build_index
from qa.config import Settings
corpus, index = sys.argv[1], sys.argv[2]
started = time.perf_counter()
report = build_index(corpus, index, settings=Settings(multilingual=False))
print(json.dumps({"seconds": time.perf_counter() - started, "chunks": report.chunks}))
"""


def _time_build(code_root: Path, corpus: Path, index: Path) -> dict[str, float]:
    environment = {**os.environ, "PYTHONPATH": str(code_root), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(corpus), str(index)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tempfile.gettempdir(),  # not this tree, so PYTHONPATH decides which qa is imported
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="folder holding the other version's qa/")
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    sides = {"before": args.before, "after": ROOT}
    seconds: dict[str, list[float]] = {"before": [], "after": []}
    chunks: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder, LoadMonitor() as load:
        corpus = Path(folder) / "corpus"
        write_scifact_corpus(corpus, scifact_documents(limit=args.limit))
        for repeat in range(args.repeats):
            order = ["before", "after"] if repeat % 2 == 0 else ["after", "before"]
            for side in order:
                index = Path(folder) / f"index-{side}-{repeat}"
                result = _time_build(sides[side], corpus, index)
                seconds[side].append(result["seconds"])
                chunks[side] = int(result["chunks"])
                print(f"repeat {repeat} {side}: {result['seconds']:.2f}s, {chunks[side]} chunks", flush=True)
    before, after = statistics.median(seconds["before"]), statistics.median(seconds["after"])
    rows = [
        ("documents", str(args.limit)),
        ("chunks before / after", f"{chunks['before']} / {chunks['after']}"),
        (
            "build seconds before (median)",
            f"{before:.2f} ({', '.join(f'{s:.2f}' for s in seconds['before'])})",
        ),
        ("build seconds after (median)", f"{after:.2f} ({', '.join(f'{s:.2f}' for s in seconds['after'])})"),
        ("after / before", f"{after / before:.3f}"),
    ]
    command = f"python -m benchmarks.build_before_after --before {args.before} --limit {args.limit} --repeats {args.repeats}"
    append_results(
        "Build time before and after a change", command, rows, [load.summary()], record=not args.no_record
    )


if __name__ == "__main__":
    main()
