"""``qa watch``: keep the index in line with the corpus folder while files change.

A build runs at start; after that every burst of file events (an editor's save, a copied
folder) leads to one incremental build, ``debounce`` seconds after its last event. A
running ``qa serve`` picks each finished build up by itself (``Engine.index``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from qa.build import BuildProgress, build_index
from qa.errors import CorpusError, IndexBusyError, QAError
from qa.records import BuildReport

DEBOUNCE_SECONDS = 1.0
_POLL_SECONDS = 0.2


class _Changes(FileSystemEventHandler):
    """Sets ``event`` on any change in the corpus, except inside the index folder."""

    def __init__(self, event: threading.Event, ignored: Path) -> None:
        self.event, self.ignored = event, ignored

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # reads (a build's own) change nothing
        paths = [event.src_path, getattr(event, "dest_path", "") or ""]
        if any(p and not Path(os.fsdecode(p)).resolve().is_relative_to(self.ignored) for p in paths):
            self.event.set()


def watch(
    corpus_dir: str | os.PathLike[str],
    index_dir: str | os.PathLike[str],
    *,
    on_build: Callable[[BuildReport | QAError], None],
    debounce: float = DEBOUNCE_SECONDS,
    stop: threading.Event | None = None,
    progress: BuildProgress | None = None,
) -> None:
    """Build ``index_dir`` from ``corpus_dir`` now and after each burst of changes, until
    ``stop`` is set (or forever). Each build's report, or the ``QAError`` that stopped it,
    goes to ``on_build``; a failed build does not end the watch (a build held up by another
    one is retried after ``debounce``). Raises ``CorpusError`` when the folder is missing."""
    corpus = Path(corpus_dir)
    if not corpus.is_dir():
        raise CorpusError(f"The corpus folder '{corpus}' does not exist; create it or pass --corpus.")
    stop = threading.Event() if stop is None else stop
    changed = threading.Event()
    observer = Observer()
    observer.schedule(_Changes(changed, Path(index_dir).resolve()), str(corpus), recursive=True)
    observer.start()
    try:
        changed.set()  # the first build brings the index up to date
        while not stop.is_set():
            if not changed.wait(_POLL_SECONDS):
                continue
            while changed.is_set():  # wait for a quiet spell
                changed.clear()
                if stop.wait(debounce):
                    return
            try:
                on_build(build_index(corpus, index_dir, progress=progress))
            except IndexBusyError as exc:
                changed.set()
                on_build(exc)
            except QAError as exc:
                on_build(exc)
    finally:
        observer.stop()
        observer.join()
