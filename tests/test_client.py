"""`qa ask` and `qa search` through a running `qa serve`: used when it serves the same
index, skipped otherwise. The index is built with the hashing encoder, which only the
server has: a command that answered without the server would have failed to load it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from qa.cli import main
from qa.client import find_server
from qa.pipeline import Engine
from qa.testing import free_port
from qa.web import launch
from tests.conftest import fake_build

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")
QUESTION = "Which countries does NATO say are supporting Russia?"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[SimpleNamespace]:
    import shutil

    from tests.conftest import CORPUS
    from tests.fakes import HashingEncoder

    base = tmp_path_factory.mktemp("client")
    shutil.copytree(CORPUS, base / "corpus")
    encoder = HashingEncoder()
    fake_build(base / "corpus", base / "index", encoder)
    engine = Engine(base / "index", encoders=[encoder])
    port = free_port()
    demo = launch(index_dir=base / "index", port=port, engine=engine, block=False)
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{port}", index=base / "index", engine=engine, base=base)
    finally:
        demo.close()


def test_ask_and_search_use_the_server_of_their_index(server, capsys):
    expected = server.engine.answer(QUESTION)
    assert main(["ask", QUESTION, "--index", str(server.index), "--server", server.url, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["text"] == expected.text
    assert printed["citations"] == [json.loads(json.dumps(c.__dict__)) for c in expected.citations]

    assert main(["search", "Russia", "--index", str(server.index), "--server", server.url, "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. ") and "\n2. " in out and "chars" in out


def test_without_a_server_of_that_index_the_models_load_here(server, tmp_path, capsys):
    # --local, a retrieval flag the server does not take, another index: each loads the
    # models here, and the hashing encoder cannot load outside the server.
    for extra in (["--local"], ["--no-rerank"]):
        assert main(["ask", QUESTION, "--index", str(server.index), "--server", server.url, *extra]) == 1
        assert "hashing" in capsys.readouterr().err
    other = tmp_path / "index"
    assert find_server(server.url, other) is None
    assert find_server(server.url, server.index) is not None
    assert find_server(f"http://127.0.0.1:{free_port()}", server.index) is None  # nothing listening


def test_a_follow_up_goes_to_the_server_with_its_history(server, capsys):
    first = server.engine.answer("Where was the NATO Defense Ministers' Meeting held in October 2024?")
    expected = server.engine.answer("Who represented South Korea there?", history=[first])
    args = ["ask", "Who represented South Korea there?", "--follow-up", first.question]
    assert main([*args, "--index", str(server.index), "--server", server.url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["query"] == expected.query


def test_chat_asks_the_server_with_the_conversation_so_far(server, capsys, monkeypatch):
    import io

    first = server.engine.answer("Where was the NATO Defense Ministers' Meeting held in October 2024?")
    expected = server.engine.answer("Who represented South Korea there?", history=[first])
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{first.question}\nWho represented South Korea there?\n"))
    assert main(["chat", "--index", str(server.index), "--server", server.url]) == 0
    out = capsys.readouterr().out
    assert first.text in out and expected.text in out
    assert f"(searched for: {expected.query})" in out  # the follow-up, resolved by the server
