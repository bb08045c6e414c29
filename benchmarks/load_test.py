"""Load test: concurrent users of ``qa serve`` on the bundled corpus, door by door.

    python -m benchmarks.load_test                          # each door: 16 clients for 60 s, recorded
    python -m benchmarks.load_test --doors rest openai --clients 4 --seconds 10 --no-record

Copies corpus/ to a temporary folder, builds a fresh index there with ``qa build``, starts
``qa serve`` on a free port of 127.0.0.1 (never any other address), waits until it answers,
then, for each door in turn, runs the clients: each asks the questions of the dev set (or
the app's examples) one after another until the time is up. The doors: ``gradio`` (the web
app's ``/ask`` through gradio_client), ``rest`` (``POST /api/v1/ask`` through httpx) and
``openai`` (``/v1/chat/completions`` through the official openai client). Every loop is
bounded in time and in count, and the server is stopped at the end, whatever happened.

Prints requests served, errors, and latency percentiles as a client sees them (queueing
included), and appends them to benchmarks/RESULTS.md under "## Load test" (one per door).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from benchmarks._common import DEV_SET, ROOT, LoadMonitor, append_results, percentile, qa_command
from qa.testing import free_port

HOST = "127.0.0.1"  # loopback only: this script never sends a request anywhere else
MAX_REQUESTS_PER_CLIENT = 100_000
SERVER_START_SECONDS = 600  # building the index and loading the models included


def _questions() -> list[str]:
    questions: list[str] = []
    if DEV_SET.exists():
        with DEV_SET.open() as handle:
            questions += [json.loads(line)["question"] for line in handle if line.strip()]
    return questions


def _wait_until_ready(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server answers a question (models loaded), or fail with its log."""
    from gradio_client import Client

    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"qa serve exited with status {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            Client(url, verbose=False).predict(_questions()[0], api_name="/ask")
            return
        except Exception:  # not listening yet
            time.sleep(1)
    raise SystemExit(f"qa serve did not answer within {SERVER_START_SECONDS} s:\n{log.read_text()[-3000:]}")


Ask = Callable[[str], None]  # asks one question; raises when the reply is not an answer


def _gradio(url: str) -> Ask:
    from gradio_client import Client

    client = Client(url, verbose=False)

    def ask(question: str) -> None:
        result = client.predict(question, api_name="/ask")
        if not isinstance(result, dict) or "text" not in result:
            raise ValueError(f"unexpected reply {result!r:.200}")

    return ask


def _rest(url: str) -> Ask:
    import httpx

    client = httpx.Client(base_url=url, timeout=120)

    def ask(question: str) -> None:
        reply = client.post("api/v1/ask", json={"question": question})
        if reply.status_code != 200 or "text" not in reply.json():
            raise ValueError(f"HTTP {reply.status_code}: {reply.text:.200}")

    return ask


def _openai(url: str) -> Ask:
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}v1", api_key="unused", max_retries=0, timeout=120)

    def ask(question: str) -> None:
        reply = client.chat.completions.create(model="qa", messages=[{"role": "user", "content": question}])
        if not reply.choices[0].message.content:
            raise ValueError(f"empty reply {reply!r:.200}")

    return ask


DOORS: dict[str, tuple[str, Callable[[str], Ask]]] = {
    "gradio": ("gradio_client, /ask", _gradio),
    "rest": ("httpx, POST /api/v1/ask", _rest),
    "openai": ("openai client, /v1/chat/completions", _openai),
}


class _Client(threading.Thread):
    """One user: asks question after question until ``stop_at``, recording each."""

    def __init__(self, number: int, connect: Callable[[], Ask], questions: list[str], stop_at: float) -> None:
        super().__init__(daemon=True)
        self.number, self.connect, self.questions, self.stop_at = number, connect, questions, stop_at
        self.latencies: list[float] = []
        self.errors: list[str] = []

    def run(self) -> None:
        try:
            ask = self.connect()
        except Exception as exc:
            self.errors.append(f"connect: {exc!r}")
            return
        for n in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= self.stop_at:
                return
            question = self.questions[(self.number * 7 + n) % len(self.questions)]
            started = time.perf_counter()
            try:
                ask(question)
            except Exception as exc:
                self.errors.append(repr(exc)[:300])
                continue
            self.latencies.append(time.perf_counter() - started)


def _load(
    door: str, url: str, clients: int, seconds: float, questions: list[str]
) -> tuple[list[_Client], float, str]:
    """Run ``clients`` users of one door for ``seconds``: (the users, elapsed seconds, load)."""
    connect = DOORS[door][1]
    with LoadMonitor() as load:
        stop_at = time.monotonic() + seconds
        users = [_Client(n, lambda: connect(url), questions, stop_at) for n in range(clients)]
        began = time.perf_counter()
        for user in users:
            user.start()
        for user in users:
            user.join(seconds + 120)  # a request in flight at the end may take a while
        elapsed = time.perf_counter() - began
    return users, elapsed, load.summary()


def run(doors: list[str], clients: int, seconds: float, record: bool) -> int:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    questions = _questions()
    with tempfile.TemporaryDirectory(prefix="qa-load-") as work_dir:
        work = Path(work_dir)
        corpus, index, log = work / "corpus", work / "index", work / "serve.log"
        shutil.copytree(ROOT / "corpus", corpus)
        started = time.perf_counter()
        subprocess.run(
            qa_command("build", "--corpus", str(corpus), "--index", str(index)), check=True, cwd=ROOT
        )
        build_seconds = time.perf_counter() - started
        port = free_port()
        url = f"http://{HOST}:{port}/"
        with log.open("wb") as output:
            server = subprocess.Popen(
                qa_command("serve", "--corpus", str(corpus), "--index", str(index), "--host", HOST,
                    "--port", str(port)),
                cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip
        runs = {}
        try:
            _wait_until_ready(url, server, log)
            for door in doors:
                print(
                    f"qa serve answers on {url}; {door}: {clients} clients for {seconds:.0f} s…",
                    file=sys.stderr,
                )
                runs[door] = _load(door, url, clients, seconds, questions)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    failed = 0
    for door, (users, elapsed, load) in runs.items():
        failed += _report(door, users, elapsed, load, clients, seconds, build_seconds, len(questions), record)
    return 1 if failed else 0


def _report(
    door: str,
    users: list[_Client],
    elapsed: float,
    load: str,
    clients: int,
    seconds: float,
    build_seconds: float,
    questions: int,
    record: bool,
) -> int:
    """Print (and record) one door's results; the number of errors."""
    hung = sum(user.is_alive() for user in users)
    latencies = sorted(t for user in users for t in user.latencies)
    errors = Counter(e for user in users for e in user.errors)
    error_count = sum(errors.values()) + hung
    table = [
        (f"clients ({DOORS[door][0]})", str(clients)),
        ("duration", f"{elapsed:.1f} s (asked for {seconds:.0f} s)"),
        ("requests served", str(len(latencies))),
        ("errors", str(error_count)),
        ("throughput", f"{len(latencies) / elapsed:.1f} answers/s"),
        ("latency p50", f"{1000 * percentile(latencies, 50):.0f} ms" if latencies else "n/a"),
        ("latency p95", f"{1000 * percentile(latencies, 95):.0f} ms" if latencies else "n/a"),
        ("latency max", f"{1000 * latencies[-1]:.0f} ms" if latencies else "n/a"),
    ]
    notes = [
        f"`qa serve` on {HOST} in a subprocess; index built fresh from corpus/ ({build_seconds:.0f} s, "
        f"real models); {questions} questions (examples + dev set) asked in turn",
        "latency is what a client waits: the server's queue and the answer together; the clients "
        "run on the same machine and share its cores with the server",
        load,
        *(f"error ×{count}: {text}" for text, count in errors.most_common(5)),
    ]
    if hung:
        notes.append(f"{hung} clients were still waiting for a reply two minutes after the end")
    title = "Load test" if door == "gradio" else f"Load test ({door})"
    command = f"python -m benchmarks.load_test --doors {door} --clients {clients} --seconds {seconds:.0f}"
    append_results(title, command, table, notes, record=record)
    return error_count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--doors", nargs="+", choices=list(DOORS), default=list(DOORS), help="doors to load, in turn"
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()
    if args.clients < 1 or not 0 < args.seconds <= 3600:
        parser.error("need at least one client and a duration of up to an hour")
    return run(args.doors, args.clients, args.seconds, record=not args.no_record)


if __name__ == "__main__":
    sys.exit(main())
