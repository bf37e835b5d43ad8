"""``timonel serve``'s command line: TF Serving's flags, one-line errors for a malformed one.

A malformed command line is a usage error (one line, exit 2, as every timonel command); options
the server cannot start with are TF Serving's startup failure (``tests/server/test_process.py``).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from timonel import cli


@pytest.mark.parametrize(
    ("flags", "reason"),
    [
        (["--bogus_flag"], "unrecognized arguments: --bogus_flag"),
        (["--port=abc"], "argument --port: invalid int value: 'abc'"),
        (["--enable_batching=maybe"], "argument --enable_batching: expected true or false, got "
         "'maybe'"),
        (["--model_base_path"], "argument --model_base_path: expected one argument"),
        (["--model_base_pat=/m"], "unrecognized arguments: --model_base_pat=/m"),
    ],
)  # fmt: skip
def test_a_malformed_command_line_is_one_line_with_exit_2(
    flags: list[str], reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["serve", "--model_base_path=/m", *flags])
    captured = capsys.readouterr()
    assert (code, captured.out) == (cli.EXIT_USER_ERROR, "")
    assert captured.err == f"error: {reason}; see `timonel serve --help`\n"


def test_an_unknown_flag_prints_no_usage_dump() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "timonel", "serve", "--model_base_path=/m", "--bogus_flag"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "error: unrecognized arguments: --bogus_flag; see `timonel serve --help`\n"
    )
