"""Embedding on a Ray cluster: ``qa build --ray ADDRESS`` (or ``ray = "auto"`` in qa.toml).

Only the embedding leaves the machine. Scanning, reading, chunking and the writer (staging,
fsync, publish) run in the build's process exactly as in a local build, so the manifest,
the incremental diff (only new and changed documents are embedded) and the crash safety
are the same: a build killed at any moment leaves the previous index live.

The texts to embed go to the cluster in blocks, one Ray task each, with a bounded number
in flight; vectors stream back as blocks finish. Each worker process loads the model once
(``_worker_encoder``) and keeps it for every later block. A worker lost mid-block is
retried elsewhere by Ray (``max_retries``); a block's vectors depend only on its texts, so
the index comes out the same.

Workers load the model by name: the default model and the multilingual one from the
installed ``qa`` (every node needs ``pip install 'qa[ray]'``), any other as a folder path
that exists on every node.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from qa.embed import Encoder, Progress, new_encoder
from qa.errors import ClusterError

INSTALL = "pip install 'qa[ray]'"
# Texts per task: a few seconds of work on one core (MiniLM int8 embeds about 100 chunks a
# second there), so the task overhead (milliseconds) is noise and a retried block costs
# little. A multiple of the local encoders' 64-text blocks, so that a worker batches the
# texts exactly as a local build does: the int8 model quantises activations per batch, and
# other batches give other vectors (cosine 0.994 to a local build's with 16-text blocks,
# 0.99999 with 64; tests/test_distributed.py).
BLOCK = 256
IN_FLIGHT_PER_CPU = 2  # blocks queued per cluster CPU: workers never wait, memory stays bounded
RETRIES = 3  # times Ray reruns a block whose worker died (Ray's default, stated)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ClusterError(f"Building on Ray needs the ray package: {INSTALL}") from None
    return ray


_connecting = threading.Lock()


def connect(address: str) -> None:
    """Join the Ray cluster at ``address``: ``"auto"`` (the cluster this machine belongs
    to, or ``RAY_ADDRESS``), ``HOST:PORT`` of its head node, or ``ray://HOST:10001``. A
    process already connected stays on its cluster."""
    ray = _ray()
    with _connecting:  # the dense and cross-lingual encodes may start at the same moment
        if ray.is_initialized():
            return
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(
                f"Cannot reach a Ray cluster at '{address}': {exc}. Start one with 'ray start --head' "
                "or pass its address to --ray; a cluster with token authentication (recent Ray turns "
                "it on by default) also needs RAY_AUTH_MODE=token here, with its token "
                "('ray get-auth-token') in ~/.ray/auth_token or RAY_AUTH_TOKEN."
            ) from exc


_workers: dict[tuple[str, int], Encoder] = {}  # in a worker process: its loaded models


def _worker_encoder(model: str, threads: int) -> Encoder:
    if (model, threads) not in _workers:
        _workers[(model, threads)] = new_encoder(model, threads=threads)
    return _workers[(model, threads)]


def _encode_block(model: str, texts: list[str], threads: int) -> np.ndarray:
    """Runs on a worker: one block's vectors."""
    return _worker_encoder(model, threads).encode(texts)


class RayEncoder:
    """An ``Encoder`` whose ``encode`` runs on the Ray cluster at ``address`` (joined on the
    first encode, so a build with nothing to embed never needs the cluster), one encoder per
    worker process. ``name`` and ``dimension`` are ``local``'s: the manifest records the
    same model as a local build's; ``local`` itself never encodes."""

    def __init__(
        self, local: Encoder, *, address: str, block: int = BLOCK, threads_per_task: int = 1
    ) -> None:
        _ray()  # not installed: say so before the build reads anything
        self.name = local.name
        self._dimension = local.dimension
        self.address = address
        self.block = block
        self.threads_per_task = threads_per_task

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        connect(self.address)
        ray = _ray()
        # Longest first, as a local encode orders them: each block holds similar lengths.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        blocks = iter([order[first : first + self.block] for first in range(0, len(order), self.block)])
        task = ray.remote(num_cpus=self.threads_per_task, max_retries=RETRIES)(_encode_block)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        limit = IN_FLIGHT_PER_CPU * max(1, cpus // self.threads_per_task)
        pending: dict[Any, list[int]] = {}
        done = 0
        while True:
            for ids in blocks:
                pending[task.remote(self.name, [texts[i] for i in ids], self.threads_per_task)] = ids
                if len(pending) >= limit:
                    break
            if not pending:
                return out
            (finished,), _ = ray.wait(list(pending), num_returns=1)
            ids = pending.pop(finished)
            try:
                out[ids] = ray.get(finished)
            except ray.exceptions.RayError as exc:
                for ref in pending:
                    ray.cancel(ref)
                lines = str(exc).strip().splitlines() or [exc.__class__.__name__]
                raise ClusterError(
                    f"Embedding on the Ray cluster failed: {lines[-1]}. Check that every node has "
                    f"{INSTALL} and the model '{self.name}'. The index is unchanged."
                ) from exc
            done += len(ids)
            if progress is not None:
                progress(done, len(texts))
