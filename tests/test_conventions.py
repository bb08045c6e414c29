"""What a Python user expects of a command: ``python -m qa``, ``qa --version``, a config
file overridden by QA_* variables overridden by flags, and ``qa watch``."""

from __future__ import annotations

import queue
import shutil
import subprocess
import sys
import threading
import time

import pytest

from qa import __version__
from qa.cli import parse_args
from qa.config_file import load_config
from qa.errors import OptionsError, QAError
from qa.pipeline import Engine
from qa.records import BuildReport
from qa.testing import registered_encoder
from qa.watch import watch
from tests.conftest import CORPUS, ROOT, fake_build


def test_python_m_qa_and_version():
    done = subprocess.run([sys.executable, "-m", "qa", "--version"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == f"qa {__version__}"


def _parse(argv, monkeypatch, tmp_path, env=None):
    monkeypatch.chdir(tmp_path)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    return parse_args(argv)


def test_file_then_environment_then_flags(monkeypatch, tmp_path):
    (tmp_path / "qa.toml").write_text(
        'index = "from-file"\ncorpus = "docs"\nport = 9000\napi_keys = ["k1"]\nmultilingual = false\n'
        "[retrieval]\nk = 3\nrerank = false\n"
    )
    args = _parse(["serve"], monkeypatch, tmp_path)
    assert (args.index, args.corpus, args.port, args.api_keys) == ("from-file", "docs", 9000, ["k1"])
    assert args.k == 3 and args.no_rerank is True and args.no_multilingual is True and args.no_dense is False

    env = {"QA_INDEX": "from-env", "QA_API_KEYS": "k2, k3", "QA_RERANK": "true", "QA_PORT": "9001"}
    args = _parse(["serve"], monkeypatch, tmp_path, env)
    assert (args.index, args.port, args.api_keys, args.no_rerank) == ("from-env", 9001, ["k2", "k3"], False)

    args = _parse(["serve", "--index", "from-flag", "--port", "9002"], monkeypatch, tmp_path, env)
    assert (args.index, args.port, args.corpus) == ("from-flag", 9002, "docs")
    assert _parse(["ask", "q"], monkeypatch, tmp_path, env).k == 3  # retrieval options reach ask too


def test_config_flag_names_the_file(monkeypatch, tmp_path):
    other = tmp_path / "elsewhere.toml"
    other.write_text('index = "named"\n')
    assert _parse(["--config", str(other), "info"], monkeypatch, tmp_path).index == "named"
    assert _parse(["info", "--config", str(other)], monkeypatch, tmp_path).index == "named"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('indx = "x"\n', "unknown option 'indx'"),
        ("[retrieval]\nkk = 2\n", "unknown option 'retrieval.kk'"),
        ('port = "80"\n', "'port' must be a int"),
        ("api_keys = 'one'\n", "'api_keys' must be a list of strings"),
        ("port = \n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_problem(tmp_path, text, message):
    path = tmp_path / "qa.toml"
    path.write_text(text)
    with pytest.raises(OptionsError, match=message):
        load_config(path, {})


def test_bad_environment_and_missing_file_are_one_line_errors(tmp_path):
    with pytest.raises(OptionsError, match="QA_RERANK='maybe': use true or false"):
        load_config(None, {"QA_RERANK": "maybe"})
    with pytest.raises(OptionsError, match="Cannot read the config file"):
        load_config(tmp_path / "missing.toml", {})
    done = subprocess.run(
        [sys.executable, "-m", "qa", "--config", str(tmp_path / "missing.toml"), "info"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and done.stderr.startswith("error: Cannot read the config file")
    assert "Traceback" not in done.stderr


def test_watch_makes_an_added_file_answerable_within_seconds(tmp_path, fake_encoder):
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    index = tmp_path / "index"
    fake_build(corpus, index, fake_encoder)
    builds: list[BuildReport | QAError] = []
    stop = threading.Event()
    with registered_encoder(fake_encoder):
        watcher = threading.Thread(
            target=watch,
            args=(corpus, index),
            kwargs={"on_build": builds.append, "debounce": 0.3, "stop": stop},
        )
        watcher.start()
        try:
            engine = Engine(index)
            deadline = time.monotonic() + 10
            while not builds and time.monotonic() < deadline:  # the build at start
                time.sleep(0.05)
            assert isinstance(builds[0], BuildReport) and builds[0].embedded_chunks == 0
            time.sleep(1)
            assert len(builds) == 1  # a build's own reads are not changes

            added = time.monotonic()
            (corpus / "zorblat.txt").write_text(
                "Zorblat Accord\n\nThe Zorblat Accord was signed in Reykjavik in 2031 by eleven states.\n"
            )
            while time.monotonic() < added + 10:
                answer = engine.answer("Where was the Zorblat Accord signed?")
                if any(c.source == "zorblat.txt" for c in answer.citations):
                    break
                time.sleep(0.1)
            answerable_after = time.monotonic() - added
            assert answerable_after < 5, answerable_after
            deadline = time.monotonic() + 5  # the report comes once the new index is published
            while len(builds) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert isinstance(builds[1], BuildReport) and builds[1].added == ["zorblat.txt"]

            (corpus / "zorblat.txt").unlink()
            deadline = time.monotonic() + 10
            while "zorblat.txt" in engine.index().document_hashes and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "zorblat.txt" not in engine.index().document_hashes
        finally:
            stop.set()
            watcher.join(10)
    assert not watcher.is_alive()


def test_qa_watch_command_reports_each_build(tmp_path, fake_encoder):
    """``qa watch`` as a process: a build at start, one per burst of changes, stopped by Ctrl-C."""
    import signal

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    fake_build(corpus, tmp_path / "index", fake_encoder)
    launcher = (
        "import sys; import qa.cli; from qa.testing import register_encoder; "
        "from tests.fakes import HashingEncoder; "
        "register_encoder(HashingEncoder()); sys.exit(qa.cli.main(sys.argv[1:]))"
    )
    command = [
        sys.executable,
        "-c",
        launcher,
        "watch",
        "--corpus",
        str(corpus),
        "--index",
        str(tmp_path / "index"),
    ]
    watcher = subprocess.Popen(
        [*command, "--debounce", "0.3"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in watcher.stdout or ()], daemon=True).start()
    try:
        assert lines.get(timeout=60).startswith("added 0, changed 0, removed 0, unchanged 5")
        (corpus / "zorblat.txt").write_text("Zorblat Accord\n\nThe Zorblat Accord was signed in Reykjavik.\n")
        assert lines.get(timeout=30).startswith("added 1, changed 0, removed 0, unchanged 5")
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=30)
    err = watcher.stderr.read() if watcher.stderr else ""
    assert watcher.returncode == 130 and "watching" in err and "Traceback" not in err
