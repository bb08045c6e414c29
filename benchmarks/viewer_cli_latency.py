"""Issue 14's two waits, with the real models over the bundled corpus:

- warm click-to-viewer: from clicking ``[1]`` under an answer in the chat (Chromium) to the
  cited passage highlighted in the viewer beside it;
- ``qa ask`` as a fresh process with a ``qa serve`` of the same index running (it asks the
  server) and with ``--local`` (it loads the models itself).

    .venv/bin/python benchmarks/viewer_cli_latency.py [--runs 5] [--record]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks._common import ROOT, append_results, qa_command
from qa.testing import free_port

QUESTION = "Which countries does NATO say are supporting Russia?"
CHROMIUM = "/usr/bin/chromium"


def _wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the server did not answer {url} within {seconds:.0f} s")


def _clicks(url: str, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(url)
        page.locator("#qa-question textarea").fill(QUESTION)
        page.locator("#qa-ask").click()
        page.locator("#qa-chat .qa-sources").wait_for()
        hit = page.frame_locator("#qa-viewer-frame").locator("mark#qa-hit")
        seconds = []
        for _ in range(runs + 1):  # the first click warms the viewer's caches: not counted
            page.evaluate("document.getElementById('qa-viewer-frame').src = 'about:blank'")
            page.wait_for_timeout(200)
            started = time.perf_counter()
            page.locator("#qa-chat .qa-marker").first.click()
            hit.wait_for()
            seconds.append(time.perf_counter() - started)
        browser.close()
    return seconds[1:]


def _asks(index: Path, runs: int, *extra: str) -> list[float]:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            qa_command("ask", QUESTION, "--index", str(index), *extra), check=True, capture_output=True
        )
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        corpus, index = Path(work) / "corpus", Path(work) / "index"
        shutil.copytree(ROOT / "corpus", corpus)
        subprocess.run(qa_command("build", "--corpus", str(corpus), "--index", str(index)), check=True)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            qa_command("serve", "--corpus", str(corpus), "--index", str(index), "--port", str(port)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(f"{url}/api/v1/health", 300)
            clicks = _clicks(url + "/", args.runs)
            served = _asks(index, args.runs, "--server", url)
            local = _asks(index, args.runs, "--local")
        finally:
            server.terminate()
            server.wait(30)

    def median(values: list[float], unit: float = 1.0) -> str:
        return f"{statistics.median(values) * unit:.{0 if unit > 1 else 2}f}"

    append_results(
        "Source viewer and fast command line (issue 14)",
        f"benchmarks/viewer_cli_latency.py --runs {args.runs}",
        [
            ("warm click on [1] to highlighted passage, median ms", median(clicks, 1000)),
            ("`qa ask` with a running server, median s", median(served)),
            ("`qa ask --local` (loads the models), median s", median(local)),
        ],
        [f"{args.runs} runs each; every `qa ask` is a fresh process"],
        record=args.record,
    )


if __name__ == "__main__":
    main()
