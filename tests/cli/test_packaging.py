"""``timonel package``, ``releases`` and ``inspect``: what they print and how they fail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import emulators
import pytest
import tfmodels

from timonel import cli
from timonel.cli.packaging import storage_options
from timonel.errors import SpecError


@pytest.fixture(scope="module")
def half(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tfmodels.write_half_plus_two(tmp_path_factory.mktemp("models") / "half")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_package_prints_the_release_uri_and_summary(
    half: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    code, out, err = run(capsys, "package", str(half), "--name", "half", "--repo", str(repo))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == str(repo / "half" / "v1")
    assert "half version 1" in out and "warmup records 4" in out
    assert "DT_FLOAT" in out and "serving_default" in out


def test_releases_lists_published_versions(
    half: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = str(tmp_path / "repo")
    for _ in range(2):  # the second is an idempotent no-op for version 1
        assert (
            run(capsys, "package", str(half), "--name", "half", "--repo", repo, "--version", "1")[0]
            == 0
        )
    assert (
        run(capsys, "package", str(half), "--name", "half", "--repo", repo, "--version", "3")[0]
        == 0
    )
    code, out, _ = run(capsys, "releases", "half", "--repo", repo)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["1", "3"]
    assert out.splitlines()[1].endswith(f"{repo}/half/v3")
    code, out, _ = run(capsys, "releases", "other", "--repo", repo)
    assert out.strip() == f"no published releases of other in {repo}"


def test_inspect_a_saved_model_and_a_release(
    half: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "inspect", str(half))
    assert code == 0 and "tensorflow" in out and "[-1]" in out
    run(capsys, "package", str(half), "--name", "half", "--repo", str(tmp_path / "r"))
    code, out, _ = run(capsys, "inspect", str(tmp_path / "r" / "half" / "v1"))
    assert code == 0 and "half version 1" in out and "content sha256" in out


def test_errors_are_one_line_with_exit_code_2(
    half: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "package", str(tmp_path), "--name", "m", "--repo", str(tmp_path / "r")
    )
    assert code == 2
    assert err.startswith("error: ") and "is not a SavedModel" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "inspect", str(half), "--storage-option", "oops")
    assert code == 2 and "--storage-option 'oops' is not KEY=VALUE" in err


def test_package_ships_checked_config_files(
    half: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batching = tmp_path / "batching.txt"
    batching.write_text("max_batch_size { value: 8 }\nallowed_batch_sizes: 4\n")
    code, _, err = run(
        capsys, "package", str(half), "--name", "half", "--repo", str(tmp_path / "r"),
        "--batching-parameters", str(batching),
    )  # fmt: skip
    assert code == 2 and "the last of allowed_batch_sizes [4] must equal max_batch_size (8)" in err
    batching.write_text("max_batch_size { value: 8 }\n")
    code, _, _ = run(
        capsys, "package", str(half), "--name", "half", "--repo", str(tmp_path / "r"),
        "--batching-parameters", str(batching), "--monitoring", "--no-warmup", "--models-config",
    )  # fmt: skip
    assert code == 0
    assert (tmp_path / "r" / "half" / "v1" / "batching_parameters.txt").is_file()
    assert (tmp_path / "r" / "half" / "v1" / "monitoring_config.txt").is_file()
    assert (tmp_path / "r" / "half" / "v1" / "models.config").is_file()


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (["endpoint_url=http://127.0.0.1:9"], {"endpoint_url": "http://127.0.0.1:9"}),
        (["anon=true", "n=3", 'k={"a": 1}'], {"anon": True, "n": 3, "k": {"a": 1}}),
        (None, {}),
    ],
)
def test_storage_options(pairs: list[str] | None, expected: dict[str, object]) -> None:
    assert storage_options(pairs) == expected


def test_storage_option_needs_a_key() -> None:
    with pytest.raises(SpecError, match="is not KEY=VALUE"):
        storage_options(["=x"])


@pytest.mark.slow
def test_the_command_publishes_to_gcs_with_credentials_from_the_environment(
    half: Path, gcs_emulator: emulators.BucketEmulator
) -> None:
    repo = gcs_emulator.fresh_uri()
    env = emulators.child_env(gcs_emulator)
    command = [sys.executable, "-m", "timonel"]
    done = subprocess.run(
        [*command, "package", str(half), "--name", "half", "--repo", repo],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"{repo}/half/v1"
    listed = subprocess.run(
        [*command, "releases", "half", "--repo", repo],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert listed.returncode == 0 and f"{repo}/half/v1" in listed.stdout
    code = "import sys, timonel; print(timonel.read_manifest(sys.argv[1]).to_json())"
    shown = subprocess.run(
        [sys.executable, "-c", code, f"{repo}/half/v1"],
        env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert json.loads(shown.stdout)["version"] == 1


def test_a_repository_of_an_unsupported_scheme_is_bad_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "releases", "half", "--repo", "hdfs://nn/models")
    assert code == 2
    assert "the scheme hdfs:// is not supported; use a local path or one of " in err
