"""Errors about command-line input name the flag the user typed, not the Python field it sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from timonel import cli
from timonel.errors import SpecError
from timonel.spec import Accelerator

PLAN = ["gke", "plan", "--cluster", "serving", "--location", "us-central1"]
RENDER = ["render", "digits", "--storage-uri", "gs://b/digits/v1"]
STANDARD = [*RENDER, "--mode", "standard"]
CANARY = ["--canary-storage-uri", "gs://b/digits/v2", "--canary-percent", "10"]
BAD_CANARY_URI = ["--canary-storage-uri", "ftp://nowhere/m"]


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        ([*PLAN, "--gpu", "nvidia-nope"], "--gpu"),
        ([*PLAN, "--gpu", "nvidia-l4", "--gpu-count", "3"], "--gpu-count"),
        ([*PLAN, "--gpu", "nvidia-l4", "--gpu-sharing", "sometimes"], "--gpu-sharing"),
        (
            [*PLAN, "--gpu", "nvidia-l4", "--gpu-sharing", "mps", "--max-shared-clients", "99"],
            "--max-shared-clients",
        ),
        ([*PLAN, "--gpu", "nvidia-l4", "--mig-partition", "1g.5gb"], "--mig-partition"),
        ([*STANDARD, "--predictor-name", "Bad_Name"], "--predictor-name"),
        ([*STANDARD, *CANARY, "--canary-name", "Bad_Name"], "--canary-name"),
        (
            [*STANDARD, "--canary-name", "next", "--canary-percent", "10", *BAD_CANARY_URI],
            "--canary-storage-uri",
        ),
        ([*RENDER, "--min-replicas", "-1"], "--min-replicas"),
        (["local", "up", "--api-port", "99999"], "--api-port"),
        (["local", "up", "--ingress-port", "0"], "--ingress-port"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_a_bad_flag_value_is_one_line_naming_the_flag(
    args: list[str],
    flag: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("TIMONEL_LOCAL_HOME", str(tmp_path / "local"))
    assert cli.main(args) == cli.EXIT_USER_ERROR
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {flag}"), err


def test_package_names_the_name_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["package", str(tmp_path), "--name", "Bad_Name", "--repo", str(tmp_path / "repo")]
    assert cli.main(args) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: --name: model name 'Bad_Name' cannot name an InferenceService")
    assert err.count("\n") == 1


def test_the_python_api_keeps_the_field_names() -> None:
    with pytest.raises(SpecError) as caught:
        Accelerator("nvidia-l4", count=3)
    assert str(caught.value).startswith("accelerator.count: GKE offers nvidia-l4 with 1, 2, 4, 8")
    assert "--" not in str(caught.value)
