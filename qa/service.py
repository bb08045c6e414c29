"""What the programmatic doors share: one engine, its corpus folder, the conversation
re-asked for a follow-up, passages as citations, and background builds.

The REST and OpenAI-compatible API (``qa.api``) and the MCP tools (``qa.mcp_server``) call
this, never retrieval or composition directly; everything here is a thin use of the public
``Engine``, ``Index`` and ``build_index``.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa.build import build_index
from qa.errors import OptionsError, QAError
from qa.pipeline import Engine
from qa.records import Answer, Citation

# Earlier questions re-asked to resolve a follow-up: each turn's query carries the context of
# the ones before it, so the last few turns are all a follow-up can lean on.
MAX_HISTORY = 8
CONTEXT_CHARS = 400  # of surrounding text returned with a passage, on each side
MAX_CONTEXT_CHARS = 5000
_KEPT_JOBS = 20


class BuildRunningError(QAError):
    """A build started through the API is still running: wait for it (its job id is in the
    message), then start another."""


def answer_dict(answer: Answer) -> dict[str, Any]:
    """An ``Answer`` as JSON: its record's fields (``asdict``: every citation field, page and
    section included) plus the rendered ``text``."""
    return {"text": answer.text, **asdict(answer)}


@dataclass
class BuildJob:
    """One background build: its progress while it runs, then its report or its error."""

    id: str
    state: str = "running"  # running, done, failed
    stage: str = "starting"
    done: int = 0
    total: int = 0
    started: float = field(default_factory=time.time)
    finished: float | None = None
    report: dict[str, Any] | None = None
    error: str | None = None

    def progress(self, stage: str, done: int, total: int) -> None:
        self.stage, self.done, self.total = stage, done, total


class Service:
    """The engine and the corpus folder behind every programmatic door."""

    def __init__(self, engine: Engine, corpus_dir: str | os.PathLike[str] | None = None) -> None:
        self.engine = engine
        self._corpus_dir = None if corpus_dir is None else Path(corpus_dir)
        self._jobs: OrderedDict[str, BuildJob] = OrderedDict()
        self._jobs_lock = threading.Lock()

    def corpus_dir(self) -> Path:
        """The folder given at start, else the one the index was built from."""
        return self._corpus_dir if self._corpus_dir is not None else self.engine.index().corpus_dir

    # --- questions ---

    def answer(self, question: str, *, history: Sequence[str] = (), k: int | None = None) -> Answer:
        """Answer ``question`` after the earlier questions in ``history`` (oldest first), as
        ``qa ask --follow-up`` does: the earlier ones are answered in turn so that a follow-up
        is resolved against what they answered."""
        earlier: list[Answer] = []
        for previous in list(history)[-MAX_HISTORY:]:
            earlier.append(self.engine.answer(previous, history=earlier, k=k))
        return self.engine.answer(question, history=earlier, k=k)

    def passages(self, query: str, *, k: int | None = None) -> list[Citation]:
        """The best passages for ``query``, as citations (chunk text, offsets, page, section)."""
        index = self.engine.index()
        hits = self.engine.search(query, k=k)
        return index.locate(
            [
                Citation(h.chunk.source, h.title, h.chunk.text, h.chunk.start, h.chunk.end, h.score, h.date)
                for h in hits
            ]
        )

    # --- documents ---

    def documents(self) -> list[dict[str, Any]]:
        """Every indexed document: source (its id), title, date, chunk count."""
        return [asdict(d) for d in self.engine.index().documents()]

    def document(self, source: str) -> dict[str, Any]:
        """One indexed document with its cleaned text (the text citations' offsets point into).
        Raises ``KeyError`` for a source that is not indexed."""
        index = self.engine.index()
        info = next((d for d in index.documents() if d.source == source), None)
        if info is None:
            raise KeyError(source)
        return {**asdict(info), "text": index.document_text(source)}

    def passage(self, source: str, start: int, end: int, *, context: int = CONTEXT_CHARS) -> dict[str, Any]:
        """The exact text ``document[start:end]`` with ``context`` characters on each side.
        Raises ``KeyError`` for a source that is not indexed and ``OptionsError`` for offsets
        outside the document."""
        index = self.engine.index()
        text = index.document_text(source)
        if not 0 <= start < end <= len(text):
            raise OptionsError(
                f"The offsets {start}-{end} are outside '{source}', which has {len(text)} characters; "
                "give 0 <= start < end <= its length."
            )
        if not 0 <= context <= MAX_CONTEXT_CHARS:
            raise OptionsError(f"The context must be between 0 and {MAX_CONTEXT_CHARS} characters.")
        title = next((d.title for d in index.documents() if d.source == source), source)
        (located,) = index.locate([Citation(source, title, text[start:end], start, end, 1.0)])
        return {
            "source": source,
            "title": title,
            "start": start,
            "end": end,
            "text": located.excerpt,
            "before": text[max(0, start - context) : start],
            "after": text[end : end + context],
            "page": located.page,
            "section": located.section,
        }

    # --- builds ---

    def start_build(self) -> BuildJob:
        """Start an incremental rebuild of the index from the corpus folder in a background
        thread. Raises ``BuildRunningError`` while another build started here runs."""
        corpus = self.corpus_dir()
        with self._jobs_lock:
            running = next((j for j in self._jobs.values() if j.state == "running"), None)
            if running is not None:
                raise BuildRunningError(
                    f"A build is already running (job {running.id}); wait until it finishes, then start another."
                )
            job = BuildJob(uuid.uuid4().hex)
            self._jobs[job.id] = job
            while len(self._jobs) > _KEPT_JOBS:
                self._jobs.popitem(last=False)
        threading.Thread(
            target=self._build, args=(job, corpus), daemon=True, name=f"qa-build-{job.id}"
        ).start()
        return job

    def _build(self, job: BuildJob, corpus: Path) -> None:
        try:
            # No settings: a rebuild keeps the index's model and chunking.
            report = build_index(corpus, self.engine.index_dir, progress=job.progress)
        except QAError as exc:
            job.error, job.state = str(exc), "failed"
        except Exception as exc:  # not the caller's doing; the job says so instead of vanishing
            job.error, job.state = f"The build failed unexpectedly: {exc!r}", "failed"
            raise
        else:
            job.report, job.state = {"summary": report.summary(), **asdict(report)}, "done"
        finally:
            job.finished = time.time()

    def job(self, job_id: str) -> BuildJob:
        """A build started here (the last few are kept). Raises ``KeyError`` for another id."""
        with self._jobs_lock:
            return self._jobs[job_id]
