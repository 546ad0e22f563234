"""The README's Python examples run as written, and its Quickstart matches CI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_python_examples():
    assert len(_python_blocks()) >= 2


def test_readme_examples_run(capsys):
    namespace: dict = {}
    for block in _python_blocks():
        exec(compile(block, str(README), "exec"), namespace)
    printed = capsys.readouterr().out
    # The summary and the domain error the README shows are really what the code prints.
    assert "Generalized linear model · poisson(link=log)" in printed
    assert "The poisson family needs y ≥ 0; response 'y' has 1 row (1) outside that range." in printed
    # The R users' block prints R's sequential anova and drop1 tables.
    assert "NULL" in printed and "<none>" in printed


def test_quickstart_has_exactly_two_commands():
    text = README.read_text(encoding="utf-8")
    quickstart = re.search(r"## Quickstart\n\n```bash\n(.*?)```", text, flags=re.S)
    assert quickstart is not None
    commands = [line for line in quickstart.group(1).splitlines() if line.strip()]
    assert len(commands) == 2
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    # CI runs the README's second command verbatim (it greps it out of the README).
    assert commands[1].startswith('pip install -e ".[test]" && ')
    assert "grep -m1 -E '^pip install -e \"\\.\\[test\\]\" && ' README.md" in ci


@pytest.mark.parametrize("argv", [["example"]])
def test_cli_example_runs(argv, capsys):
    from neuralglm.cli import main

    assert main(argv) == 0
    assert "Poisson GLM of car insurance claims" in capsys.readouterr().out
