"""Shared helpers for the benchmark scripts: data, machine facts, cached embeddings, results.

Benchmarks print numbers; they are not tests. Each one appends its table to
``benchmarks/RESULTS.md`` with the machine it ran on and the CPU load seen while it ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SHARED_DATA = ROOT.parent / "shared" / "data"
SCIFACT = SHARED_DATA / "beir" / "scifact" / "corpus.jsonl"
SCIFACT_QUERIES = SHARED_DATA / "beir" / "scifact" / "queries.jsonl"
SQUAD = SHARED_DATA / "squad" / "dev-v1.1.json"
DEV_SET = ROOT.parent / "shared" / "eval" / "seed_qa_dev.jsonl"


def qa_command(*args: str) -> list[str]:
    """The command line that runs ``qa`` with ``args`` in this Python."""
    return [sys.executable, "-m", "qa.cli", *args]


def cache_dir() -> Path:
    """Where expensive intermediate results (embeddings of the data sets) are kept between runs."""
    path = Path(os.environ.get("QA_BENCH_CACHE", Path.home() / ".cache" / "qa-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def require(path: Path, what: str) -> Path:
    """Exit cleanly (status 0, a message) when a data set is absent."""
    if not path.exists():
        print(f"skipped: {what} not found at {path}", file=sys.stderr)
        raise SystemExit(0)
    return path


# --- data -----------------------------------------------------------------------------------


def scifact_documents(path: Path = SCIFACT, limit: int | None = None) -> list[tuple[str, str, str]]:
    """(id, title, abstract) of each SciFact document, in file order."""
    out = []
    with require(path, "the BEIR SciFact corpus").open() as handle:
        for line in handle:
            row = json.loads(line)
            out.append((str(row["_id"]), str(row["title"]).strip(), str(row["text"]).strip()))
            if limit is not None and len(out) >= limit:
                break
    return out


def squad_paragraphs(path: Path = SQUAD) -> list[tuple[str, str]]:
    """(article title, paragraph) of every SQuAD dev paragraph."""
    data = json.loads(require(path, "SQuAD dev v1.1").read_text())
    return [
        (article["title"].replace("_", " "), paragraph["context"])
        for article in data["data"]
        for paragraph in article["paragraphs"]
    ]


def squad_questions(path: Path = SQUAD) -> list[str]:
    data = json.loads(require(path, "SQuAD dev v1.1").read_text())
    return [
        qa["question"]
        for article in data["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]


def scifact_queries(path: Path = SCIFACT_QUERIES) -> list[str]:
    with require(path, "the SciFact queries").open() as handle:
        return [json.loads(line)["text"] for line in handle]


def write_scifact_corpus(target: Path, documents: Sequence[tuple[str, str, str]]) -> None:
    """One .txt per abstract, title on the first line (how a user's folder would look)."""
    target.mkdir(parents=True, exist_ok=True)
    for doc_id, title, text in documents:
        (target / f"{doc_id}.txt").write_text(f"{title}\n\n{text}\n")


# --- machine and load -----------------------------------------------------------------------


def machine() -> dict[str, str]:
    import faiss
    import sentence_transformers
    import torch

    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import sqlite3

        sqlite = sqlite3.sqlite_version
    except ImportError:
        sqlite = "?"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch threads": str(torch.get_num_threads()),
        "sentence-transformers": sentence_transformers.__version__,
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "sqlite": sqlite,
    }


class LoadMonitor:
    """Samples the 1-minute load average in the background while a benchmark runs."""

    def __init__(self, every: float = 5.0) -> None:
        self.samples: list[float] = [os.getloadavg()[0]]
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self) -> LoadMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> str:
        return (
            f"1-min load avg min {min(self.samples):.1f} / median {statistics.median(self.samples):.1f} "
            f"/ max {max(self.samples):.1f} on {os.cpu_count()} cores"
        )


def rss_mb() -> float:
    """Resident memory of this process, MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


# --- results --------------------------------------------------------------------------------


def append_results(
    title: str, command: str, table: list[tuple[str, str]], notes: Sequence[str] = (), *, record: bool = True
) -> None:
    """Print a result table and append it, with the machine, to benchmarks/RESULTS.md
    (unless ``record`` is false: a trial run)."""
    info = machine()
    lines = [
        f"## {title}",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')} · `{command}`",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in table),
        "",
        *(f"- {note}" for note in notes),
        "- machine: " + ", ".join(f"{k} {v}" for k, v in info.items()),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not record:
        return
    if not RESULTS.exists():
        RESULTS.write_text("# Benchmark results\n\nAppended by the scripts in benchmarks/; newest last.\n\n")
    with RESULTS.open("a") as handle:
        handle.write(text + "\n")


# --- cached real embeddings -----------------------------------------------------------------


def scifact_chunk_texts(limit: int | None = None) -> list[tuple[str, str, str]]:
    """(source, title, embedding text) of every chunk the product makes of SciFact."""
    from qa.chunking import chunk_document, embedding_text
    from qa.config import Settings
    from qa.records import Document

    settings = Settings()
    out = []
    for doc_id, title, text in scifact_documents(limit=limit):
        document = Document(f"{doc_id}.txt", title, f"{title}\n\n{text}", "")
        for chunk in chunk_document(document, size=settings.chunk_size, overlap=settings.chunk_overlap):
            out.append((document.source, title, embedding_text(title, chunk)))
    return out


def cached_embeddings(name: str, texts: Sequence[str], model: str, *, block: int = 512) -> np.ndarray:
    """Embeddings of ``texts`` by ``model`` (a qa encoder name), computed once and kept in
    the cache folder; a run that is interrupted resumes where it stopped."""
    from qa.embed import shared_encoder

    digest = hashlib.sha256(("\x00".join(texts) + model).encode()).hexdigest()[:16]
    final = cache_dir() / f"{name}-{digest}.npy"
    if final.exists():
        return np.load(final)
    parts = cache_dir() / f"{name}-{digest}.parts"
    parts.mkdir(exist_ok=True)
    encoder = shared_encoder(model)
    blocks = []
    for first in range(0, len(texts), block):
        part = parts / f"{first:09d}.npy"
        if not part.exists():
            np.save(part, encoder.encode(list(texts[first : first + block])))
            print(f"  {name}: {min(first + block, len(texts))}/{len(texts)} embedded", file=sys.stderr)
        blocks.append(np.load(part))
    vectors = np.vstack(blocks).astype(np.float32)
    np.save(final, vectors)
    return vectors


def iter_chunks(seq: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for first in range(0, len(seq), size):
        yield seq[first : first + size]
