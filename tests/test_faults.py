"""Faults: builds killed at any moment, two builds at once, queries during a rebuild, and
tampered index files.

Builds run in real subprocesses with the hashing encoder (the model name ``test/hashing-64``
resolves to it in each process), so that a kill -9 costs a second, not a model load.
tests/test_crash.py kills real-model ``qa build`` runs; this file covers many more moments.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from qa.build import build_index
from qa.cli import main
from qa.config import Settings
from qa.pipeline import Engine
from qa.records import Answer
from qa.store import Index, open_index
from qa.testing import chunk_store, free_port, registered_encoder
from qa.text import query_terms
from tests.conftest import CORPUS, ROOT
from tests.fakes import HashingEncoder

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")

SETTINGS = Settings(model=HashingEncoder.name, multilingual=False)
CHILD_ENV = {**os.environ, "QA_ROOT": str(ROOT), "OMP_NUM_THREADS": "1"}

# Run in a child process. Builds with a paced hashing encoder, prints each progress stage,
# and stops at a named failpoint (``sys.argv[3]``) until it is killed. Failpoints in the
# write path leave the file being written torn in half first, as a kill in mid-write would.
_PREAMBLE = """
import os, pathlib, shutil, sys, time
sys.path.insert(0, os.environ["QA_ROOT"])
import faiss
import numpy as np
import qa.store.writer as writer
from qa.build import build_index
from qa.config import Settings
from qa.errors import IndexCorruptError
from tests.fakes import HashingEncoder
assert "torch" not in sys.modules, "importing qa.store must not import torch"


class PacedEncoder(HashingEncoder):
    '''The hashing encoder at about a real model's pace (1 ms a passage), in blocks. With
    QA_EMBED_GATE set, it says "embedding" and waits for that file before it starts.'''

    def encode(self, texts, *, progress=None):
        gate = os.environ.get("QA_EMBED_GATE")
        if gate and len(texts) > 1:
            print("embedding", flush=True)
            deadline = time.monotonic() + 60
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.01)
        out = np.zeros((len(texts), self.dimension), np.float32)
        for first in range(0, len(texts), 32):
            out[first : first + 32] = super().encode(texts[first : first + 32])
            time.sleep(0.001 * len(texts[first : first + 32]))
            if progress is not None:
                progress(min(first + 32, len(texts)), len(texts))
        return out
"""

_BUILD_CHILD = (
    _PREAMBLE
    + """
corpus, index, pause = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]


def hold(point):
    print("paused", point, flush=True)
    time.sleep(60)  # the parent kills the build here
    sys.exit(3)


def torn(path):
    data = pathlib.Path(path).read_bytes()
    pathlib.Path(path).write_bytes(data[: len(data) // 2])


last = None


def progress(stage, done, total):
    global last
    if stage != last or stage == "write":
        print("stage", stage, done, total, flush=True)
        last = stage
    if pause == "embed" and stage == "embed" and 2 * done >= total:
        hold(pause)
    if pause == "write" and stage == "write" and done == 0:
        hold(pause)  # before the chunk store is committed


write_index = faiss.write_index


def write_index_then_pause(vectors, path):
    write_index(vectors, path)
    if pause == "vectors":
        torn(path)
        hold(pause)


faiss.write_index = write_index_then_pause
write_text = pathlib.Path.write_text


def write_text_then_pause(self, data, *args, **kwargs):
    written = write_text(self, data, *args, **kwargs)
    if (pause, self.name) in {("manifest", "manifest.json"), ("pointer", ".CURRENT.tmp"), ("pointer", "CURRENT")}:
        torn(self)
        hold(pause)
    return written


pathlib.Path.write_text = write_text_then_pause
fsync = writer.fsync


def fsync_then_pause(path):
    if pause == "staged" and path.name.startswith(".staging-"):
        hold(pause)  # every file of the new generation written, not yet renamed
    if pause == "switched" and path == index:
        hold(pause)  # CURRENT replaced, the folder not yet fsynced
    fsync(path)


writer.fsync = fsync_then_pause
rmtree = shutil.rmtree


def rmtree_then_pause(path, *args, **kwargs):
    if pause == "cleanup" and pathlib.Path(path).name.startswith("gen-"):
        (pathlib.Path(path) / "dense.faiss").unlink()
        hold(pause)  # an old generation half removed
    return rmtree(path, *args, **kwargs)


shutil.rmtree = rmtree_then_pause
settings = Settings(model=HashingEncoder.name, multilingual=False)
report = build_index(corpus, index, settings=settings, encoder=PacedEncoder(), progress=progress)
assert "torch" not in sys.modules
print("done", report.chunks, flush=True)
"""
)

# The real command line, with the model name resolving to the paced hashing encoder.
_CLI_CHILD = (
    _PREAMBLE
    + """
import qa.cli
from qa.testing import register_encoder
register_encoder(PacedEncoder())
sys.exit(qa.cli.main(sys.argv[1:]))
"""
)


class Child:
    """A subprocess whose stdout lines are collected as they come."""

    def __init__(self, *args: str, script: str = _BUILD_CHILD, env: dict[str, str] | None = None) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**CHILD_ENV, **(env or {})},
            cwd=ROOT,
        )
        self.lines: list[list[str]] = []
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, True), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, False), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, split: bool) -> None:  # type: ignore[no-untyped-def]
        for line in stream:
            if split:
                self.lines.append(line.split())
            else:
                self.errors.append(line)

    def _join(self) -> None:
        for reader in self._readers:
            reader.join(5)

    def wait_for(self, *words: str, timeout: float = 60) -> bool:
        """Wait until a line starts with ``words`` (True) or the process ends (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(line[: len(words)] == list(words) for line in list(self.lines)):
                return True
            if self.process.poll() is not None:
                self._join()
                return any(line[: len(words)] == list(words) for line in self.lines)
            time.sleep(0.002)
        raise AssertionError(f"no {' '.join(words)!r} from the child in {timeout} s: {self.lines[-5:]}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)
        self._join()

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        """Wait for the exit; return the exit status and stderr."""
        self.process.wait(timeout)
        self._join()
        return self.process.returncode, "".join(self.errors)

    @property
    def stage(self) -> str:
        stages = [line[1] for line in self.lines if line[:1] == ["stage"]]
        return "done" if ["done"] in [line[:1] for line in self.lines] else (stages or ["scan"])[-1]


# --- a corpus in two versions ---------------------------------------------------------------

WORDS = (  # noqa: SIM905 (a sentence of words reads better than a column of them)
    "ferry cargo berth crane tide pilot quay beacon anchor hull deck crew manifest storm patrol "
    "survey channel dredge tug lantern signal harbour customs warehouse rope chart compass buoy"
).split()
CODES = ["amber", "violet", "cobalt", "scarlet", "jade", "ochre"]
STATIONS = 160  # documents; the even ones change between the versions


def _document(n: int, version: int) -> str:
    rng = random.Random(n)
    filler = " ".join(" ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + "." for _ in range(40))
    code = CODES[(n + (version if n % 2 == 0 else 0)) % len(CODES)]
    return (
        f"Station {n} bulletin\n\nThe harbour code of station {n} is {code} {n * 3}. {filler}\n\n"
        f"Station {n} keeps its records in hall {n % 7}.\n"
    )


def _write_corpus(folder: Path, version: int) -> Path:
    folder.mkdir(parents=True)
    for n in range(STATIONS):
        (folder / f"station-{n:03d}.txt").write_text(_document(n, version))
    (folder / f"only-in-v{version}.txt").write_text(f"Version note\n\nThis corpus is version {version}.\n")
    return folder


QUESTIONS = [f"What is the harbour code of station {n}?" for n in (4, 5, 12, 33)] + [
    "Which version is this corpus?"
]
LEXICAL = ["harbour code station", "version note corpus", "hall records"]


def _answers(engine: Engine) -> list[tuple[str, bool, list[tuple[str, int, int]]]]:
    results = [engine.answer(q) for q in QUESTIONS]
    return [(a.text, a.abstained, [(c.source, c.start, c.end) for c in a.citations]) for a in results]


def _snapshot(index: Index) -> dict:
    """Everything a build decides, keyed by content rather than by chunk id."""
    db = chunk_store(index)
    documents = {row[0]: row[1:] for row in db.execute("SELECT source, sha256, title, text FROM documents")}
    rows = db.execute("SELECT id, source, ordinal, start, end, text FROM chunks").fetchall()
    ids = [row[0] for row in rows]
    vectors = index.dense.reconstruct_batch(np.asarray(ids, dtype=np.int64)) if ids else []
    chunks = {
        (source, ordinal): (start, end, text, tuple(np.round(vector, 5)))
        for (_, source, ordinal, start, end, text), vector in zip(rows, vectors, strict=True)
    }
    by_id = {row[0]: (row[1], row[2]) for row in rows}
    lexical = {
        query: sorted(by_id[i] for i, _ in index.search_lexical(query_terms(query), 10_000))
        for query in LEXICAL
    }
    return {
        "documents": documents,
        "chunks": chunks,
        "lexical": lexical,
        "counts": (index.chunk_count, index.dense.ntotal),
    }


def _generations(index_dir: Path) -> list[str]:
    return sorted(p.name for p in index_dir.glob("gen-*"))


def _phase(index_dir: Path, before: Path) -> str:
    """Where the build was when it died, from what it left on disk."""
    live = (index_dir / "CURRENT").read_text().strip()
    if live != before.name:
        stale = [index_dir / name for name in set(_generations(index_dir)) - {live, before.name}]
        if any(not (path / "dense.faiss").exists() for path in stale):
            return "committed, old generation half removed"
        return "committed, old generation not yet removed" if stale else "committed"
    if any(name > before.name for name in _generations(index_dir)):
        return "new generation renamed, CURRENT not switched"
    staging = list(index_dir.glob(".staging-*"))
    if not staging:
        return "starting or scanning (no staging folder yet)"
    files = {p.name for p in staging[0].iterdir()}
    if "manifest.json" in files:
        return "staging: chunk store, vectors, manifest written"
    if "dense.faiss" in files:
        return "staging: chunk store and vectors written"
    return "staging: reading, chunking, embedding (chunk store open)"


@pytest.fixture
def hashing() -> Iterator[HashingEncoder]:
    """The hashing encoder, which the model name ``test/hashing-64`` now resolves to."""
    with registered_encoder(HashingEncoder()) as encoder:
        yield encoder


# (failpoint, the phase it must leave behind)
FAILPOINTS = [
    ("embed", "staging: reading, chunking, embedding (chunk store open)"),
    ("write", "staging: reading, chunking, embedding (chunk store open)"),
    ("vectors", "staging: chunk store and vectors written"),
    ("manifest", "staging: chunk store, vectors, manifest written"),
    ("staged", "staging: chunk store, vectors, manifest written"),
    ("pointer", "new generation renamed, CURRENT not switched"),
    ("switched", "committed, old generation not yet removed"),
    ("cleanup", "committed, old generation half removed"),
]
TIMED_TRIALS = 12
AFTER_WRITE_DELAYS = (0.0, 0.01, 0.03)


@pytest.mark.slow
def test_kill_9_at_any_moment_of_a_build_leaves_the_previous_index_whole(tmp_path, hashing, capsys):
    corpora = [_write_corpus(tmp_path / "v1", 1), _write_corpus(tmp_path / "v2", 2)]
    references = []
    for version, corpus in enumerate(corpora):
        build_index(corpus, tmp_path / f"ref{version}", settings=SETTINGS, encoder=hashing)
        reference = open_index(tmp_path / f"ref{version}")
        references.append((_snapshot(reference), _answers(Engine(tmp_path / f"ref{version}"))))
    assert references[0][1] != references[1][1], "the versions answer differently"

    index_dir = tmp_path / "index"
    shutil.copytree(tmp_path / "ref0", index_dir)
    engine = Engine(index_dir)
    # A whole build, to time the kills by: v1 -> v2, in a child like the trials.
    child = Child(str(corpora[1]), str(index_dir), "-")
    code, err = child.finish()
    assert code == 0, err[-3000:]
    duration = time.monotonic() - child.started
    assert _snapshot(open_index(index_dir)) == references[1][0]
    version = 1

    trials: list[tuple[str, str, float]] = [
        ("timed", "", duration * (j + 0.5) / TIMED_TRIALS) for j in range(TIMED_TRIALS)
    ]
    trials += [("failpoint", name, 0.0) for name, _ in FAILPOINTS]
    trials += [("after write", "", delay) for delay in AFTER_WRITE_DELAYS]
    random.Random(5).shuffle(trials)
    trials.sort(key=lambda t: t[1] == "cleanup")  # needs two generations behind the live one
    phases: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    outcomes: list[str] = []

    for kind, failpoint, delay in trials:
        before = open_index(index_dir)
        expected = _answers(engine)
        target = 1 - version
        child = Child(str(corpora[target]), str(index_dir), failpoint or "-")
        if kind == "timed":
            time.sleep(max(0.0, child.started + delay - time.monotonic()))
        elif kind == "failpoint":
            assert child.wait_for("paused", failpoint), (failpoint, child.lines)
        else:
            child.wait_for("stage", "write", "0")
            time.sleep(delay)
        child.kill()
        phase = _phase(index_dir, before.path)
        label = f"{kind} {failpoint or f'{delay:.2f}s'}"
        if kind == "failpoint":
            assert phase == dict(FAILPOINTS)[failpoint], label
        phases[phase] += 1
        stages[child.stage] += 1
        outcomes.append(f"{label:22} last stage {child.stage:6} -> {phase}")

        after = open_index(index_dir)  # never a half-written generation
        if after.path == before.path:
            assert _snapshot(after) == references[version][0], label
            assert _answers(engine) == expected, label
        else:
            assert _snapshot(after) == references[target][0], label

        build_index(corpora[target], index_dir, settings=SETTINGS, encoder=hashing)  # the next build
        assert _snapshot(open_index(index_dir)) == references[target][0], label
        assert _answers(engine) == references[target][1], label
        assert not list(index_dir.glob(".staging-*")), "a crashed build's staging folder is removed"
        # The live generation and the one before it, for open readers; a build killed while
        # removing older ones leaves one more, until the next build that commits.
        assert len(_generations(index_dir)) <= 3, _generations(index_dir)
        version = target
        del before, after  # an open Index pins its generation: these must not keep old ones

    assert sum(phases.values()) == len(trials) >= 20
    with capsys.disabled():
        print(f"\nkill -9 trials: {len(trials)} (a whole build takes {duration:.2f} s)")
        for phase, count in phases.most_common():
            print(f"  {count:3d}  {phase}")
        print("  by last stage reported: " + ", ".join(f"{s} {n}" for s, n in stages.most_common()))
        print("\n".join(f"  {line}" for line in sorted(outcomes)))


# --- two builds at once ----------------------------------------------------------------------


def _cli_build(corpus: Path, index_dir: Path, *extra: str) -> tuple[str, ...]:
    return ("build", "--corpus", str(corpus), "--index", str(index_dir),
            "--model", HashingEncoder.name, "--no-multilingual", *extra)  # fmt: skip


@pytest.mark.slow
def test_a_second_build_at_once_exits_with_a_clear_message(tmp_path, hashing):
    corpus = _write_corpus(tmp_path / "v1", 1)
    build_index(corpus, tmp_path / "reference", settings=SETTINGS, encoder=hashing)
    index_dir = tmp_path / "index"
    gate = tmp_path / "go"
    first = Child(*_cli_build(corpus, index_dir), script=_CLI_CHILD, env={"QA_EMBED_GATE": str(gate)})
    try:
        assert first.wait_for("embedding"), first.errors[-5:]  # it holds the index now
        second = Child(*_cli_build(corpus, index_dir), script=_CLI_CHILD)
        code, err = second.finish()
        assert code == 1, err
        assert err.splitlines() == [
            f"error: Another 'qa build' is writing the index at '{index_dir}'. "
            "Wait for it to finish, then run this build again."
        ]
    finally:
        gate.touch()
    code, err = first.finish()
    assert code == 0, err[-3000:]
    assert _snapshot(open_index(index_dir)) == _snapshot(open_index(tmp_path / "reference"))
    assert not list(index_dir.glob(".staging-*"))


# --- queries while a rebuild runs ------------------------------------------------------------

HARBOUR = (
    "Port Quillon notice\n\nThe harbour code of Port Quillon is {}. Pilots repeat the code to the tower.\n"
)
OLD, NEW = "amber seven", "violet nine"
HARBOUR_QUESTION = "What is the harbour code of Port Quillon?"

_REBUILD_CHILD = (
    _PREAMBLE
    + """
corpus, index, rounds, old, new = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), *sys.argv[4:]
settings = Settings(model=HashingEncoder.name, multilingual=False)
for n in range(rounds):
    (corpus / "harbour.txt").write_text(new if n % 2 == 0 else old)  # edited, then rebuilt
    build_index(corpus, index, settings=settings, encoder=PacedEncoder())
    print("committed", n, flush=True)
    time.sleep(0.3)
"""
)


class PinnedEngine(Engine):
    """An engine that remembers, per thread, the generation its last answer came from (an
    answer reads one generation throughout, even when a build commits meanwhile)."""

    def __init__(self, index_dir: Path) -> None:
        super().__init__(index_dir)
        self._pinned = threading.local()

    def answer(self, question: str, **kwargs) -> Answer:  # type: ignore[no-untyped-def, override]
        self._pinned.index = None
        return super().answer(question, **kwargs)

    def index(self) -> Index:
        if getattr(self._pinned, "index", None) is None:
            self._pinned.index = super().index()
        return self._pinned.index  # type: ignore[no-any-return]

    def generation(self) -> Index:
        return self._pinned.index  # type: ignore[no-any-return]


def _harbour_version(citations: list[dict], texts: dict[str, str]) -> str:
    """``old`` or ``new``: which harbour notice every harbour citation comes from."""
    versions = set()
    for citation in citations:
        if citation["source"] != "harbour.txt":
            continue
        matches = {
            name
            for name, text in texts.items()
            if text[citation["start"] : citation["end"]] == citation["excerpt"]
            and (name == "old") == (OLD in text)
        }
        assert matches, citation  # excerpt == document_text[start:end] of one version
        if OLD in citation["excerpt"] or NEW in citation["excerpt"]:
            versions.add("old" if OLD in citation["excerpt"] else "new")
    assert len(versions) == 1, (versions, citations)  # never a mix of the two
    return versions.pop()


@pytest.mark.slow
def test_queries_during_rebuilds_see_the_old_or_the_new_index_whole(tmp_path, hashing, capsys):
    from gradio_client import Client

    from qa.corpus import scan_corpus
    from qa.ingest import read_document
    from qa.web import launch

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    for n in range(40):  # some bulk, so that each rebuild copies a real chunk store
        (corpus / f"station-{n:03d}.txt").write_text(_document(n, 1))
    texts = {}
    for name, code in (("old", OLD), ("new", NEW)):
        (corpus / "harbour.txt").write_text(HARBOUR.format(code))
        (file,) = [f for f in scan_corpus(corpus)[0] if f.source == "harbour.txt"]
        texts[name] = read_document(file).text
    (corpus / "harbour.txt").write_text(HARBOUR.format(OLD))
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, settings=SETTINGS, encoder=hashing)

    python_engine, web_engine = PinnedEngine(index_dir), PinnedEngine(index_dir)
    port = free_port()
    demo = launch(index_dir=index_dir, port=port, engine=web_engine, block=False)
    seen: dict[str, list[str]] = {"python": [], "web": []}
    errors: list[str] = []
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        rebuild = Child(str(corpus), str(index_dir), "8", HARBOUR.format(OLD), HARBOUR.format(NEW),
                        script=_REBUILD_CHILD)  # fmt: skip
        deadline = time.monotonic() + 90

        def ask_python() -> None:
            while rebuild.process.poll() is None and time.monotonic() < deadline:
                try:
                    answer = python_engine.answer(HARBOUR_QUESTION)
                    generation = python_engine.generation()
                    for citation in answer.citations:  # against the generation it came from
                        text = generation.document_text(citation.source)
                        assert text[citation.start : citation.end] == citation.excerpt
                    citations = [c.__dict__ for c in answer.citations]
                    seen["python"].append(_harbour_version(citations, texts))
                    time.sleep(0.005)  # leave the web server some of the GIL
                except Exception as exc:
                    errors.append(f"python: {exc!r}")

        def ask_web() -> None:
            while rebuild.process.poll() is None and time.monotonic() < deadline:
                try:
                    result = client.predict(HARBOUR_QUESTION, api_name="/ask")
                    version = _harbour_version(result["citations"], texts)
                    assert (OLD in result["text"]) == (version == "old") or result["abstained"]
                    seen["web"].append(version)
                except Exception as exc:
                    errors.append(f"web: {exc!r}")

        askers = [threading.Thread(target=ask) for ask in (ask_python, ask_web)]
        for asker in askers:
            asker.start()
        for asker in askers:
            asker.join()
        code, err = rebuild.finish()
    finally:
        demo.close()
    assert code == 0, err[-3000:]
    assert len([line for line in rebuild.lines if line[:1] == ["committed"]]) == 8
    assert errors == []
    for channel, versions in seen.items():
        assert len(versions) >= 10 and set(versions) == {"old", "new"}, (channel, Counter(versions))
    with capsys.disabled():
        counts = {channel: dict(Counter(versions)) for channel, versions in seen.items()}
        print(f"\nanswers during 8 rebuilds, by the harbour notice they cite: {counts}; errors: 0")


def test_a_reader_that_outlives_two_rebuilds_can_still_read(tmp_path, hashing):
    """Each thread opens its own connection to the chunk store when it first reads: the
    reader's generation must still be on disk after two commits (it pins it), and it goes
    at the first build after the reader is closed."""
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    index_dir = tmp_path / "index"
    build_index(corpus, index_dir, settings=SETTINGS, encoder=hashing)
    reader = open_index(index_dir)
    for n in range(2):
        (corpus / "new.txt").write_text(f"Added later\n\nSummit {n} met in Hobart.\n")
        build_index(corpus, index_dir, settings=SETTINGS, encoder=hashing)
    results: list[object] = []

    def read() -> None:
        try:
            results.append(reader.documents())
        except Exception as exc:
            results.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    if isinstance(results[0], Exception):
        raise results[0]
    assert len(results[0]) == 5  # type: ignore[arg-type]
    pinned = reader.path
    reader = None  # closed: nothing holds its generation any more
    (corpus / "new.txt").write_text("Added later\n\nSummit 2 met in Hobart.\n")
    build_index(corpus, index_dir, settings=SETTINGS, encoder=hashing)
    assert not pinned.exists(), "a generation nobody reads is removed by the next build"
    assert len(_generations(index_dir)) == 2, "the live generation and the one before it"


# --- tampered index files --------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated vectors", "edited manifest", "deleted chunk store"])
def test_tampered_index_gets_one_line_that_names_the_fix(tmp_path, hashing, capsys, damage):
    index_dir = tmp_path / "index"
    build_index(CORPUS, index_dir, settings=SETTINGS, encoder=hashing)
    generation = open_index(index_dir).path
    if damage == "truncated vectors":
        data = (generation / "dense.faiss").read_bytes()
        (generation / "dense.faiss").write_bytes(data[: len(data) // 3])
    elif damage == "edited manifest":
        manifest = json.loads((generation / "manifest.json").read_text())
        manifest["chunks"] = 1
        (generation / "manifest.json").write_text(json.dumps(manifest))
    else:
        (generation / "store.sqlite").unlink()

    # A real process: one line on stderr, exit status 1, no traceback.
    child = Child("ask", "Who met in Brussels?", "--index", str(index_dir), script=_CLI_CHILD)
    code, err = child.finish()
    assert code == 1 and child.lines == []
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: The index at '{index_dir}' is damaged") and "Run 'qa build --full'" in err

    assert main(_cli_build(CORPUS, index_dir)) == 1  # an incremental build cannot start from it
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "Run 'qa build --full'" in err, err
    assert main(_cli_build(CORPUS, index_dir, "--full")) == 0  # the fix the message names
    capsys.readouterr()
    assert main(["ask", "Who met in Brussels?", "--index", str(index_dir)]) == 0
    assert "[1]" in capsys.readouterr().out
