"""Vector search at scale: exact (flat) vs the product's IVF-SQ8 vs HNSW, on real embeddings.

    python -m benchmarks.vector_search [--base INDEX_DIR] [--sizes 15000,100000,1000000]
                                       [--nprobes 8,16,32,64,128,256] [--hnsw-max 100000]

Vectors: the real MiniLM embeddings of SciFact's chunks (from a built index, by default the
base kept by ``build_throughput --full-default``); beyond their count, perturbed copies
(benchmarks/synthetic.py, cosine ~0.9 to the original). Queries: SciFact's test claims,
embedded with the same model. Recall@10 is measured against exact inner-product search over
the same unquantised vectors. Search is timed one query at a time on one thread, as the
product runs it. Memory is the size of the serialised index.
"""

from __future__ import annotations

import argparse
import statistics
import time

import faiss
import numpy as np

from benchmarks._common import (
    LoadMonitor,
    append_results,
    cached_embeddings,
    percentile,
    scifact_queries,
)


def recall_at(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def recall_by_original(found: np.ndarray, truth: np.ndarray, originals: int) -> float:
    """Recall of distinct original chunks: copies of one chunk hold the same text, so which
    of them comes back does not matter to a reader."""
    scores = []
    for f, t in zip(found, truth, strict=True):
        wanted = {int(i) % originals for i in t}
        scores.append(len({int(i) % originals for i in f if i >= 0} & wanted) / len(wanted))
    return float(np.mean(scores))


def single_query_ms(index: faiss.Index, queries: np.ndarray, k: int = 30, limit: int = 100) -> list[float]:
    faiss.omp_set_num_threads(1)
    times = []
    for q in queries[:limit]:
        started = time.perf_counter()
        index.search(q.reshape(1, -1), k)
        times.append(1000 * (time.perf_counter() - started))
    return times


def index_bytes(index: faiss.Index) -> int:
    writer = faiss.VectorIOWriter()
    faiss.write_index(index, writer)
    return int(writer.data.size())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", help="a qa index whose dense vectors are the real embeddings")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--nprobes", default="8,16,32,64,128,256")
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="skip HNSW above this size")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()

    from pathlib import Path

    from benchmarks.synthetic import _perturb, load_base, scifact_base
    from qa.config import DEFAULT_MODEL
    from qa.store.vectors import ivf_index, ivf_lists, ivf_probes

    base = load_base(Path(args.base) if args.base else scifact_base())
    ids = sorted(base.dense)
    real = np.stack([base.dense[i] for i in ids]).astype(np.float32)
    queries = cached_embeddings("scifact-queries-minilm", scifact_queries()[: args.queries], DEFAULT_MODEL)
    rng = np.random.default_rng(0)
    table: list[tuple[str, str]] = []
    sizes = [len(real)] + [int(s) for s in args.sizes.split(",") if s]
    nprobes = [int(p) for p in args.nprobes.split(",")]
    with LoadMonitor() as load:
        for size in sizes:
            copies = -(-size // len(real))
            vectors = np.vstack([real] + [_perturb(real, rng) for _ in range(copies - 1)])[:size]
            label = f"{size:,} ({'real' if size <= len(real) else f'{len(real):,} real + perturbed copies'})"

            flat = faiss.IndexFlatIP(vectors.shape[1])
            flat.add(vectors)
            faiss.omp_set_num_threads(2)
            _, truth = flat.search(queries, 10)
            flat_ms = single_query_ms(flat, queries)
            table.append((f"{label}: flat (exact) search ms p50 / p95", f"{statistics.median(flat_ms):.1f} / {percentile(flat_ms, 95):.1f}; {flat.ntotal * flat.d * 4 / 2**20:.0f} MiB"))  # fmt: skip

            faiss.omp_set_num_threads(2)
            started = time.perf_counter()
            ivf = ivf_index(vectors, np.arange(size, dtype=np.int64))
            built = time.perf_counter() - started
            default_probe = ivf.nprobe
            table.append((f"{label}: IVF-SQ8 build (train + add)", f"{built:.1f} s; nlist {ivf.nlist} (rule {ivf_lists(size)}), default nprobe {ivf_probes(ivf.nlist)}; {index_bytes(ivf) / 2**20:.0f} MiB"))  # fmt: skip
            for nprobe in sorted({*nprobes, default_probe}):
                if nprobe > ivf.nlist:
                    continue
                ivf.nprobe = nprobe
                faiss.omp_set_num_threads(2)
                _, found = ivf.search(queries, 10)
                times = single_query_ms(ivf, queries)
                mark = " (default)" if nprobe == default_probe else ""
                by_original = (
                    f" (of distinct originals {recall_by_original(found, truth, len(real)):.3f})"
                    if size > len(real)
                    else ""
                )
                table.append((f"{label}: IVF-SQ8 nprobe {nprobe}{mark}", f"recall@10 {recall_at(found, truth):.3f}{by_original}; search ms p50 {statistics.median(times):.2f} / p95 {percentile(times, 95):.2f}"))  # fmt: skip

            if size <= args.hnsw_max:
                faiss.omp_set_num_threads(2)
                hnsw = faiss.IndexHNSWFlat(vectors.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
                hnsw.hnsw.efConstruction = 40
                started = time.perf_counter()
                hnsw.add(vectors)
                built = time.perf_counter() - started
                for ef in (32, 64, 128):
                    hnsw.hnsw.efSearch = ef
                    faiss.omp_set_num_threads(2)
                    _, found = hnsw.search(queries, 10)
                    times = single_query_ms(hnsw, queries)
                    table.append((f"{label}: HNSW32 efSearch {ef}", f"recall@10 {recall_at(found, truth):.3f} (of distinct originals {recall_by_original(found, truth, len(real)):.3f}); search ms p50 {statistics.median(times):.2f}; build {built:.0f} s; {index_bytes(hnsw) / 2**20:.0f} MiB; no remove_ids"))  # fmt: skip
                del hnsw
            print("\n".join(f"{a}: {b}" for a, b in table[-12:]), flush=True)
            del flat, ivf, vectors
    command = f"python -m benchmarks.vector_search --sizes {args.sizes}"
    append_results(
        "Vector search: exact vs IVF-SQ8 vs HNSW", command, table, [load.summary()], record=not args.no_record
    )


if __name__ == "__main__":
    main()
