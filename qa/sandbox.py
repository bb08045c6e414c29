"""Read untrusted documents in worker processes, each bounded in memory and in time.

A corpus file can be hostile: a DOCX that unpacks to gigabytes of XML, a PDF whose pages
share one huge drawing stream, text shaped to make a parser slow. Reading one in the
building process would let it take all the memory, or hold the GIL and freeze a server for
as long as it likes. So a build hands each file to a worker process that

- reads the file once, hashes exactly the bytes it parses (the version the index records is
  the version whose text it holds, even when the file changes during the build),
- checks the cheap limits a format allows before parsing (what a DOCX unpacks to; how much
  drawing stream a PDF's pages hold in all),
- parses under an address-space limit (``RLIMIT_AS``), so a file that needs more memory
  raises ``MemoryError`` there and nowhere else,

and the building process kills a worker whose file takes longer than the time limit. Either
way that file is skipped with the reason and the build goes on. Workers are started once per
build and reused for every file; a killed one is replaced.

The protocol is one JSON request per line on the worker's stdin and one length-prefixed JSON
response on a private copy of its stdout (what a library prints goes to stderr instead).
JSON, not pickle: a worker that a hostile file took over still cannot run code in the
building process.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import queue
import resource
import select
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
import zipfile
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from qa.errors import CorpusError, QAError
from qa.ingest import MAX_FILE_BYTES, read_document
from qa.records import CorpusFile, Document

# What the XML parts of a DOCX may unpack to. A 300-page report is about 5 MB of XML; a zip
# bomb is gigabytes packed into a few (16 MB of DOCX held 4 GB). Zip headers declare each
# member's unpacked size and Python's zipfile stops at it, so the check is sound and costs a
# read of the directory.
MAX_DOCX_UNPACKED_BYTES = 256 * 1024 * 1024
# Drawing instructions (content streams) that a PDF's pages hold in all, counting a stream
# each time a page draws it. Text extraction parses every page's instructions, at about
# 4 MB/s with PDFium on a busy core: this much takes half the default time limit. The check
# refuses the absurd at once (200 pages sharing one 40 MB stream hold 8 GB, half an hour).
MAX_PDF_CONTENT_BYTES = 128 * 1024 * 1024

_LENGTH = struct.Struct("<Q")
_STARTUP_SECONDS = 120.0  # starting Python and importing qa on a busy machine
_MAX_WORKERS = 4


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on reading one file, and how many files are read at once (``workers``
    ``None``: one per core, at most four)."""

    seconds: float = 60.0
    memory_bytes: int = 1 << 30
    docx_unpacked_bytes: int = MAX_DOCX_UNPACKED_BYTES
    pdf_content_bytes: int = MAX_PDF_CONTENT_BYTES
    workers: int | None = None

    def describe_memory(self) -> str:
        gigabytes = self.memory_bytes / (1 << 30)
        if gigabytes >= 1:
            return f"{gigabytes:g} GB"
        return f"{self.memory_bytes / (1 << 20):.0f} MB"


# --- the building process's side --------------------------------------------------------------


class _WorkerGone(Exception):
    """The worker exited or was killed before it answered."""


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, limits: ReadLimits) -> None:
        package_root = str(Path(__file__).resolve().parents[1])
        env = {
            **os.environ,
            # One thread each: workers run side by side, and every thread reserves address
            # space that would count against the memory limit.
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-c", "import sys, qa.sandbox; qa.sandbox.serve(sys.argv[1])",
             json.dumps(asdict(limits))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            # Ctrl-C in a terminal interrupts the build, which then ends its workers itself.
            start_new_session=True,
        )  # fmt: skip
        self._buffer = bytearray()
        try:
            self._receive(_STARTUP_SECONDS)  # {"ready": true} once it runs
        except (TimeoutError, _WorkerGone):
            self.kill()
            raise QAError(
                f"Could not start a document reader process ({sys.executable}); "
                "check that qa and its parsers are installed in this Python."
            ) from None

    def request(self, message: dict[str, Any], seconds: float) -> dict[str, Any]:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(json.dumps(message).encode() + b"\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            raise _WorkerGone from None
        return self._receive(seconds)

    def _receive(self, seconds: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + seconds
        while True:
            if len(self._buffer) >= _LENGTH.size:
                (size,) = _LENGTH.unpack_from(self._buffer)
                if len(self._buffer) >= _LENGTH.size + size:
                    payload = bytes(self._buffer[_LENGTH.size : _LENGTH.size + size])
                    del self._buffer[: _LENGTH.size + size]
                    return dict(json.loads(payload))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                block = os.read(fd, 1 << 20)
                if not block:
                    raise _WorkerGone
                self._buffer += block

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()

    def close(self) -> None:
        """Let the worker finish (end of its input), or kill it after a moment."""
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class DocumentReaders:
    """A pool of sandboxed workers that read corpus files into ``Document``s.

    Use as a context manager; workers start on the first file and end on exit.
    """

    def __init__(self, limits: ReadLimits | None = None) -> None:
        self.limits = ReadLimits() if limits is None else limits
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._workers: list[_Worker] = []
        workers = self.limits.workers
        self._size = min(_MAX_WORKERS, os.cpu_count() or 1) if workers is None else max(1, workers)
        self._starting = threading.Lock()

    def __enter__(self) -> DocumentReaders:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        while self._workers:
            self._workers.pop().close()

    def read(self, files: Sequence[CorpusFile]) -> Iterator[tuple[CorpusFile, Document | CorpusError]]:
        """Yield each file, in order, with its document or the reason it was skipped."""
        if not files:
            return
        threads_wanted = min(self._size, len(files))
        pending: deque[tuple[CorpusFile, Future[Document | CorpusError]]] = deque()
        # A few files ahead of the one being yielded: workers stay busy while the documents
        # held in memory stay few.
        window = 2 * threads_wanted
        with ThreadPoolExecutor(threads_wanted, thread_name_prefix="qa-reader") as threads:
            remaining = iter(files)
            for file in remaining:
                pending.append((file, threads.submit(self.read_one, file)))
                if len(pending) >= window:
                    break
            while pending:
                file, future = pending.popleft()
                next_file = next(remaining, None)
                if next_file is not None:
                    pending.append((next_file, threads.submit(self.read_one, next_file)))
                yield file, future.result()

    def read_one(self, file: CorpusFile) -> Document | CorpusError:
        """Read one file in a worker; never raises for anything the file does."""
        worker = self._take_worker()
        request = {"path": str(file.path), "source": file.source}
        try:
            response = worker.request(request, self.limits.seconds)
        except TimeoutError:
            worker.kill()
            self._workers.remove(worker)
            return CorpusError(
                f"took longer than {self.limits.seconds:g} s to read; split it into smaller files "
                "or convert it to plain text"
            )
        except _WorkerGone:
            code = worker.process.wait()
            worker.kill()
            self._workers.remove(worker)
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            return CorpusError(f"reading it crashed the parser ({how})")
        if response["exiting"]:
            worker.close()
            self._workers.remove(worker)
        else:
            self._idle.put(worker)
        if "error" in response:
            return CorpusError(str(response["error"]))
        return Document(**response["document"])

    def _take_worker(self) -> _Worker:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._starting:
            start = len(self._workers) < self._size
            if start:
                worker = _Worker(self.limits)
                self._workers.append(worker)
        return worker if start else self._idle.get()


# --- the worker's side ------------------------------------------------------------------------


def serve(limits_json: str) -> None:
    """The worker's loop: read requests from stdin until it closes. Not for direct use."""
    limits = ReadLimits(**json.loads(limits_json))
    memory_bytes = limits.memory_bytes
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # a library's print cannot break the protocol
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    _reply(replies, {"ready": True})
    out_of_memory = f"needs more than {limits.describe_memory()} of memory to read"
    for line in sys.stdin.buffer:
        request = json.loads(line)
        try:
            document = _read(CorpusFile(request["source"], Path(request["path"]), ""), limits)
            reply: dict[str, Any] = {"document": asdict(document)}
        except MemoryError:
            reply = {"error": out_of_memory}
        except CorpusError as exc:
            # C parsers report a failed allocation as whatever error they were in the middle
            # of (lxml: "XMLSyntaxError: unknown error"); the high-water mark tells.
            reply = {"error": out_of_memory if _peak_address_space() > 0.9 * memory_bytes else str(exc)}
        # Near the limit once, a worker ends: its heap may be spent or fragmented.
        reply["exiting"] = _peak_address_space() > 0.9 * memory_bytes
        _reply(replies, reply)
        if reply["exiting"]:
            return


def _exit_with_parent(parent: int) -> None:
    """End this worker when the building process is gone (killed mid-file, it cannot kill
    its workers; one stuck in a hostile file would otherwise run on)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _peak_address_space() -> int:
    """This process's largest address space so far (``VmPeak``), in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmPeak:"):
                return int(line.split()[1]) * 1024
    return 0


def _reply(stream: BinaryIO, message: dict[str, Any]) -> None:
    payload = json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass")
    stream.write(_LENGTH.pack(len(payload)) + payload)
    stream.flush()


def _read(file: CorpusFile, limits: ReadLimits) -> Document:
    data = read_file_once(file.path)
    file = CorpusFile(file.source, file.path, hashlib.sha256(data).hexdigest())
    suffix = file.path.suffix.lower()
    if suffix == ".docx":
        check_docx(data, limits.docx_unpacked_bytes)
    elif suffix == ".pdf":
        check_pdf(data, limits.pdf_content_bytes)
    return read_document(file, data=data)


def read_file_once(path: Path) -> bytes:
    """The bytes of a regular file of at most ``MAX_FILE_BYTES``, read in one pass.

    Refuses what is not a regular file even when it became one after the corpus was scanned
    (a file swapped for a pipe would block the read forever).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise CorpusError(f"cannot be read: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CorpusError("not a regular file (a pipe, socket or device)")
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise CorpusError(f"larger than {MAX_FILE_BYTES >> 20} MB")
    return data


def check_docx(data: bytes, limit: int = MAX_DOCX_UNPACKED_BYTES) -> None:
    """Refuse a DOCX whose parts unpack to more than ``limit`` bytes."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile as exc:
        raise CorpusError(f"corrupt or unreadable DOCX ({exc})") from exc
    if unpacked > limit:
        raise CorpusError(
            f"unpacks to {unpacked / 2**20:,.0f} MB from {len(data) / 2**20:,.1f} MB (a zip bomb, "
            f"or a document too large: the limit is {limit / 2**20:g} MB); "
            "split it into smaller files"
        )


def check_pdf(data: bytes, limit: int = MAX_PDF_CONTENT_BYTES) -> None:
    """Refuse a PDF whose pages hold more than ``limit`` bytes of drawing streams
    in all, counting a shared stream once for every page that draws it.

    Each distinct stream is decoded once to learn its size, under the worker's memory limit.
    Anything pypdf cannot follow is left to the reader, which reports it.
    """
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    sizes: dict[int, int] = {}  # decoded size of each stream, by object number
    total = 0
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            return  # the reader decrypts or refuses it
        for page in reader.pages:
            for ref in _content_refs(page.raw_get("/Contents") if "/Contents" in page else None):
                if ref.idnum not in sizes:
                    sizes[ref.idnum] = len(ref.get_object().get_data())
                total += sizes[ref.idnum]
                if total > limit:
                    raise CorpusError(
                        f"its {len(reader.pages):,} pages hold more than {limit / 2**20:g} MB "
                        "of drawing instructions (pages that share one huge stream?); it would take too "
                        "long to read"
                    )
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError):
        return


def _content_refs(contents: object) -> list[Any]:
    """The indirect references to a page's content streams (one, or an array of them)."""
    from pypdf.generic import ArrayObject, IndirectObject

    if isinstance(contents, IndirectObject):
        resolved = contents.get_object()
        return (
            [r for r in resolved if isinstance(r, IndirectObject)]
            if isinstance(resolved, ArrayObject)
            else [contents]
        )
    if isinstance(contents, ArrayObject):
        return [r for r in contents if isinstance(r, IndirectObject)]
    return []
