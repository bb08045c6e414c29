"""Shared fixtures. Real models load once per session; every index lives in a tmp folder."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

# Two cores: keep torch and BLAS from oversubscribing them when tests spawn builds.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from qa.build import build_index
from qa.config import DEFAULT_MODEL, MULTILINGUAL_MODEL, Settings
from qa.embed import Encoder, shared_encoder
from qa.pipeline import Engine
from qa.store import open_index
from tests.fakes import HashingEncoder

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
SHARED = ROOT.parent / "shared"
DEV_SET = SHARED / "eval" / "seed_qa_dev.jsonl"


def grow_corpus(corpus: Path, count: int) -> None:
    """Add ``count`` small reports to ``corpus``: enough files for a build to take a while."""
    for n in range(count):
        sentences = " ".join(
            f"Report {n} notes that delegation {n * 7 + i} discussed maritime patrol plan {i} in detail."
            for i in range(12)
        )
        (corpus / f"extra_{n:04d}.txt").write_text(f"Extra report {n}\n\n{sentences}\n")


def start_event(url: str, event: str, data: list, *, element: str | None = None) -> str:
    """Start the Gradio app's ``event`` (on the element with ``elem_id`` ``element``, or the
    app's only such event) through the queue, as the page does; return the queue session to
    read its result from (``event_result``). ``gradio_client`` cannot call these: they are not
    API endpoints."""
    import httpx

    config = httpx.get(f"{url}/config").json()
    ids = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    fn_index = next(
        i
        for i, d in enumerate(config["dependencies"])
        if [t[1] if element is None else (ids.get(t[0]), t[1]) for t in d["targets"]]
        == [event if element is None else (element, event)]
    )
    session = f"test-{time.monotonic_ns()}"
    joined = httpx.post(
        f"{url}/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session}
    )
    assert joined.status_code == 200, joined.text
    return session


def event_result(url: str, session: str, *, timeout: float) -> dict:
    """The final message of the event started as ``session``."""
    import httpx

    with httpx.stream(
        "GET", f"{url}/gradio_api/queue/data", params={"session_hash": session}, timeout=timeout
    ) as events:
        for line in events.iter_lines():
            if '"process_completed"' in line:
                return dict(json.loads(line.removeprefix("data:")))
    raise AssertionError("the event never completed")


@pytest.fixture(scope="session", autouse=True)
def _every_citation_is_exact():
    """Check the citation contract on every answer any test receives:
    ``excerpt == cleaned_text[start:end]`` and every marker resolves to a citation."""
    from qa.text import markers

    original = Engine.answer

    def checked(self, question, **kwargs):
        result = original(self, question, **kwargs)
        index = self.index()
        for citation in result.citations:
            text = index.document_text(citation.source)
            assert text[citation.start : citation.end] == citation.excerpt, citation
        if not result.abstained:
            # The markers as rendered, without the copied text (a document may hold "[4]").
            blank = lambda copied: ""  # noqa: E731
            numbers = markers(f"{result.render_lead(blank)} {' '.join(result.render_sentences(blank))}")
            # every citation is used, and markers are numbered in order of first appearance
            assert list(dict.fromkeys(numbers)) == list(range(1, len(result.citations) + 1)), result.text
        return result

    Engine.answer = checked
    yield
    Engine.answer = original


@pytest.fixture(scope="session")
def encoder() -> Encoder:
    return shared_encoder(DEFAULT_MODEL)


@pytest.fixture(scope="session")
def multilingual_encoder() -> Encoder:
    return shared_encoder(MULTILINGUAL_MODEL)


@pytest.fixture
def fake_encoder() -> HashingEncoder:
    return HashingEncoder()


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory, encoder, multilingual_encoder) -> Path:
    """The bundled corpus, built once with the real models. Tests must not modify it."""
    index_dir = tmp_path_factory.mktemp("demo") / "index"
    build_index(CORPUS, index_dir, encoder=encoder, multilingual_encoder=multilingual_encoder)
    return index_dir


@pytest.fixture(scope="session")
def demo_engine(demo_index, encoder, multilingual_encoder) -> Engine:
    return Engine(demo_index)


@pytest.fixture
def corpus_copy(tmp_path) -> Path:
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS, target)
    return target


def fake_build(corpus: Path, index: Path, encoder: HashingEncoder, **kwargs):
    """A build with the fast fake encoder and no cross-lingual index."""
    settings = kwargs.pop("settings", Settings(model=encoder.name, multilingual=False))
    return build_index(corpus, index, settings=settings, encoder=encoder, **kwargs)


__all__ = ["CORPUS", "DEV_SET", "ROOT", "SHARED", "fake_build", "open_index"]
