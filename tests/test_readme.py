"""The README's Python examples run as written, from the repository root."""

from __future__ import annotations

import os
import re

import pytest

from tests.conftest import ROOT


def test_readme_python_blocks_run(capsys: pytest.CaptureFixture[str]) -> None:
    # ```python blocks run as written; ```py blocks are sketches with names left to the reader
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 2
    namespace: dict[str, object] = {}
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out
    assert "ordered chair" in out
    assert (
        "('only-approved-suppliers',) supplier unknown.example is not on the approved list" in out
    )
    assert "confirm purchases over 500 need a human approval" in out


def test_readme_setup_commands_are_the_ones_ci_runs() -> None:
    text = (ROOT / "README.md").read_text()
    assert ".venv/bin/guardrail demo" in text
    assert "bash .ci/check" in text
    assert "bash .ci/check" in (ROOT / ".ci" / "run").read_text()
