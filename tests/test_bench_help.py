"""The benchmark scripts answer ``--help`` with what they measure, and start no run."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.mark.parametrize("script", ["coldstart.py", "deploy.py", "package.py", "serve.py"])
def test_help_prints_the_docstring_and_starts_no_run(script: str) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(BENCH / script), "--help"], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith(f"usage: python bench/{script} [-h]")
    first_line = (BENCH / script).read_text().split('"""')[1].splitlines()[0]
    assert first_line in result.stdout
    assert time.monotonic() - started < 30  # a run takes minutes


def test_an_unknown_argument_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "serve.py"), "--clients=8"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "unrecognized arguments: --clients=8" in result.stderr
