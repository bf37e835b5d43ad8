"""TensorFlow's C++ start-up lines stay off the terminal of CLI commands, except ``--debug``'s
(``timonel serve`` keeps them: its log is TF Serving's)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tfmodels

pytestmark = pytest.mark.slow

#: A line of absl's C++ log: severity, date, time, thread, file:line]
CPP_LOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\S+ +\d+ \S+:\d+\] ", re.MULTILINE)


def _package(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    model = tfmodels.write_half_plus_two(tmp_path / "model")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run(
        [sys.executable, "-m", "timonel", *flags, "package", str(model), "--name=hpt",
         f"--repo={tmp_path / 'repo'}"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def test_a_command_that_loads_tensorflow_prints_no_cpp_start_up_lines(tmp_path: Path) -> None:
    result = _package(tmp_path)
    assert result.returncode == 0, result.stderr
    assert not CPP_LOG_LINE.search(result.stderr), result.stderr
    assert "absl::InitializeLog" not in result.stderr


def test_debug_shows_them(tmp_path: Path) -> None:
    result = _package(tmp_path, "--debug")
    assert result.returncode == 0, result.stderr
    assert CPP_LOG_LINE.search(result.stderr), result.stderr


def test_the_commands_own_errors_still_reach_the_terminal(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    (tmp_path / "model").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "timonel", "package", str(tmp_path / "model"), "--name=hpt",
         f"--repo={tmp_path / 'repo'}"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.startswith("error: "), result.stderr
