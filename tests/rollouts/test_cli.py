from __future__ import annotations

import pytest

import timonel
from timonel.cli import main


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--max-p99-latency-ms", "100", "--max-latency-ratio", "1.5"], "not both: one latency"),
        (["--steps", "50,10"], "increasing whole percentages"),
        (["--interval", "soon"], "is not a duration"),
        (["--resume", "--abort"], "--resume or --abort, not both"),
        (["--max-error-rate", "2"], "max_error_rate 2.0 is out of range"),
    ],
)
def test_bad_rollout_flags_exit_2_with_one_line(
    flags: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["rollout", "m", "--storage-uri", "gs://r/m/v2", *flags]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_rollout_is_public() -> None:
    assert timonel.rollout.__module__ == "timonel"
    assert "rollout" in timonel.__all__
