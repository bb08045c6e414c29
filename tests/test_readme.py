"""The README's examples run as written, and CI runs the README's test command."""

from __future__ import annotations

import re

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_python_example_runs_against_an_index_in_the_working_folder(
    demo_index, tmp_path, monkeypatch, capsys
):
    (tmp_path / "index").symlink_to(demo_index, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    (example,) = [block for block in _blocks("python") if "from qa import answer" in block]
    exec(compile(example, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "Brussels" in out and "[1] " in out


def test_ci_runs_the_readme_test_command():
    commands = [block.strip() for block in _blocks("bash")]
    assert commands[:2] == ["make chat", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\nmake test\n" in ci
