"""Many servers, one index: two real `qa serve` processes read one index folder while a
build in this process commits new generations. Every answer comes from one whole generation
(the one it names), no request fails, and both servers move on to each new generation
without a restart."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from qa.build import build_index
from qa.config import Settings
from qa.testing import free_port
from tests.conftest import ROOT

SETTINGS = Settings(multilingual=False)
QUESTION = "When does the harbour of Port Elmsway reopen?"
EDITIONS = 5
NOTICES = {
    "harbour.txt": "Harbour notice\n\nThe harbour of Port Elmsway reopens on day {n}, says edition {n} of the notice.\n",
    "ferry.txt": "Ferry notice\n\nThe Port Elmsway harbour ferry returns when the harbour reopens, per edition {n}.\n",
    "pier.txt": "Pier notice\n\nPort Elmsway harbour pier works finish before the harbour reopens (edition {n}).\n",
}
EDITION = re.compile(r"(?:edition|day) (\d+)")


def _write_edition(corpus: Path, n: int) -> dict[str, str]:
    texts = {name: text.format(n=n) for name, text in NOTICES.items()}
    for name, text in texts.items():
        (corpus / name).write_text(text)
    return texts


def _serve(index_dir: Path, corpus: Path, port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "qa.cli", "serve", "--index", str(index_dir), "--corpus", str(corpus),
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT, stdout=log.open("w"), stderr=subprocess.STDOUT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip


def _wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not come up: {log.read_text()[-3000:]}")


def _edition_of(answer: dict, editions: dict[int, dict[str, str]]) -> int:
    """The one edition every citation of ``answer`` is exact in; fails on a mix."""
    found = {int(n) for citation in answer["citations"] for n in EDITION.findall(citation["excerpt"])}
    assert len(found) == 1, answer
    (n,) = found
    for citation in answer["citations"]:
        text = editions[n][citation["source"]]
        assert text[citation["start"] : citation["end"]] == citation["excerpt"], (n, citation)
    return n


@pytest.mark.slow
def test_two_servers_follow_one_writer_without_errors_or_mixed_generations(tmp_path, capsys):
    import httpx

    corpus, index_dir = tmp_path / "corpus", tmp_path / "index"
    corpus.mkdir()
    editions = {1: _write_edition(corpus, 1)}
    build_index(corpus, index_dir, settings=SETTINGS)
    built = {(index_dir / "CURRENT").read_text().strip(): 1}  # generation -> edition
    urls, servers = [], []
    try:
        for name in ("a", "b"):
            port = free_port()
            servers.append(
                (_serve(index_dir, corpus, port, tmp_path / f"{name}.log"), tmp_path / f"{name}.log")
            )
            urls.append(f"http://127.0.0.1:{port}")
        for url, (server, log) in zip(urls, servers, strict=True):
            _wait_until_up(url, server, log)

        seen: dict[str, list[int]] = {url: [] for url in urls}
        reported: set[tuple[str, int]] = set()  # (the generation an answer names, its edition)
        errors: list[str] = []
        building = True

        def ask(url: str) -> None:
            with httpx.Client(timeout=60) as client:
                while building:
                    try:
                        response = client.post(f"{url}/api/v1/ask", json={"question": QUESTION})
                        assert response.status_code == 200, response.text
                        edition = _edition_of(response.json(), editions)
                        reported.add((response.json()["generation"], edition))
                        seen[url].append(edition)
                    except Exception as exc:
                        errors.append(f"{url}: {exc!r}")

        askers = [threading.Thread(target=ask, args=(url,)) for url in urls]
        for asker in askers:
            asker.start()
        try:
            for n in range(2, EDITIONS + 1):
                # Each server answers from the live edition before the next build commits.
                deadline = time.monotonic() + 60
                while (
                    any(n - 1 not in seen[url] for url in urls) and not errors and time.monotonic() < deadline
                ):
                    time.sleep(0.05)
                editions[n] = _write_edition(corpus, n)
                build_index(corpus, index_dir, settings=SETTINGS)
                built[(index_dir / "CURRENT").read_text().strip()] = n
            deadline = time.monotonic() + 60
            while (
                any(EDITIONS not in seen[url] for url in urls) and not errors and time.monotonic() < deadline
            ):
                time.sleep(0.05)
        finally:
            building = False
            for asker in askers:
                asker.join()
    finally:
        for server, _ in servers:
            server.terminate()
            server.wait(timeout=30)

    assert errors == []
    assert reported <= set(built.items()), "each answer names the generation it was read from"
    for url in urls:
        assert set(seen[url]) == set(range(1, EDITIONS + 1)), (url, Counter(seen[url]))
        assert seen[url] == sorted(seen[url]), "a server never goes back to an older generation"
    generations = sorted(p.name for p in index_dir.glob("gen-*"))
    assert len(generations) == 2, (
        f"stopped servers hold nothing; the live one and the one before: {generations}"
    )
    with capsys.disabled():
        counts = {url.rsplit(":", 1)[1]: dict(sorted(Counter(seen[url]).items())) for url in urls}
        print(f"\nanswers by edition, per server, during {EDITIONS - 1} commits: {counts}; errors: 0")
