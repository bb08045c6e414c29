"""Helpers for tests and benchmarks that need an encoder other than a model folder.

``registered_encoder`` makes an index's model name resolve to a given encoder everywhere in
the process (``Engine``, ``build_index``, the CLI, the web app) for the duration of a
``with`` block; ``register_encoder`` does it for good (a child process's launcher).
``chunk_store`` reads what a build wrote, in SQL; ``free_port`` finds a port for a server
a test or benchmark starts.
"""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from qa.embed import Encoder, register_encoder, unregister_encoder
from qa.store import Index


@contextmanager
def registered_encoder(encoder: Encoder) -> Iterator[Encoder]:
    """Resolve ``encoder.name`` to ``encoder`` inside the block; restore it afterwards."""
    previous = register_encoder(encoder)
    try:
        yield encoder
    finally:
        unregister_encoder(encoder.name, previous)


def chunk_store(index: Index) -> sqlite3.Connection:
    """A read-only SQL connection to an open index's chunk store, for checks of what a build
    wrote (tables ``documents``, ``chunks`` and ``chunks_fts``; see ``qa.store.writer``)."""
    return sqlite3.connect(f"file:{index.path / 'store.sqlite'}?mode=ro", uri=True)


def free_port() -> int:
    """A loopback port nothing listens on, for a server a test or benchmark starts."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


__all__ = ["chunk_store", "free_port", "register_encoder", "registered_encoder"]
