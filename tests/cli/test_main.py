"""The command line's contract: version, help, one-line errors and exit codes by error class."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer

import timonel
from timonel import cli
from timonel.errors import (
    ApiError,
    ClusterUnreachable,
    EvidenceUnreachable,
    ModelError,
    ReleaseError,
    RolloutFailed,
    ServingError,
    SpecError,
    Status,
    StorageError,
    TimonelError,
    WaitTimeout,
)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "timonel", *args], capture_output=True, text=True, timeout=60
    )


def test_version_prints_the_package_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"timonel {timonel.__version__}"


def test_help_lists_the_global_options() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert "--version" in result.stdout
    assert "--debug" in result.stdout


@pytest.fixture
def failing_app(monkeypatch: pytest.MonkeyPatch) -> None:
    app = typer.Typer()

    @app.callback()
    def root(debug: bool = typer.Option(False, "--debug")) -> None:
        pass

    @app.command()
    def boom() -> None:
        raise SpecError("spec.predictor.minReplicas: [-1] must be >= 0; set it to 0 or more")

    monkeypatch.setattr(cli, "app", app)


@pytest.mark.usefixtures("failing_app")
def test_a_timonel_error_is_one_line_on_stderr_with_exit_code_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["boom"]) == cli.EXIT_USER_ERROR
    err = capsys.readouterr().err
    assert err.strip() == (
        "error: spec.predictor.minReplicas: [-1] must be >= 0; set it to 0 or more"
    )
    assert "Traceback" not in err


@pytest.mark.usefixtures("failing_app")
def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--debug", "boom"]) == cli.EXIT_USER_ERROR
    assert "Traceback" in capsys.readouterr().err


def test_an_unknown_command_is_a_usage_error() -> None:
    result = run("no-such-command")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_library_logs_stay_out_of_a_failing_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])

    def noisy() -> None:
        logging.getLogger("gcsfs").error("_request out of retries on exception")
        raise SpecError("the bucket cannot be read; check the credentials")

    app = typer.Typer()
    app.command()(noisy)
    app.callback()(lambda: None)
    monkeypatch.setattr(cli, "app", app)
    assert cli.main(["noisy"]) == cli.EXIT_USER_ERROR
    assert capsys.readouterr().err.strip() == (
        "error: the bucket cannot be read; check the credentials"
    )


def test_a_bad_flag_is_one_line_that_points_at_help() -> None:
    result = run("render", "digits", "--storage-uri", "gs://b/digits/v1", "-o", "xml")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: Invalid value for '-o' / '--output': Value error, 'xml' is not one of 'yaml', "
        "'json'; see `timonel render --help`"
    ]


def test_an_unexpected_failure_is_one_line_that_asks_for_a_report(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = typer.Typer()

    @app.command()
    def broken() -> None:
        raise KeyError("revision")

    app.callback()(lambda: None)
    monkeypatch.setattr(cli, "app", app)
    assert cli.main(["broken"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: unexpected KeyError: 'revision'; this is a bug in timonel: run the command again "
        "with --debug and report the traceback"
    )


def test_no_command_prints_the_help() -> None:
    result = run()
    assert result.returncode == 2
    assert "Usage: timonel" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (SpecError("--min-replicas: -1 is below 0; give 0 or more"), 2),
        (ModelError("model half has no serving signature; export one"), 2),
        (ReleaseError("gs://b/half/v3 is not published; publish it first"), 2),
        (TimonelError("a refusal of no finer class; fix the input it names"), 2),
        (RolloutFailed("error rate 4% > 1% at 30%; rolled back to half-00001"), 3),
        (ApiError("forbidden: grant the Role rule", status=Status(code=403)), 4),
        (ClusterUnreachable("cannot reach the Kubernetes API at https://10.0.0.1"), 4),
        (EvidenceUnreachable("cannot query Prometheus at http://127.0.0.1:9090"), 4),
        (ServingError("Servable not found for request: Latest(nope)", code="NOT_FOUND"), 4),
        (StorageError("cannot read gs://b/half: 403 Forbidden; check the credentials"), 4),
        (WaitTimeout("inferenceservice ml/half was not ready after 600s"), 5),
        (KeyError("revision"), 1),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_each_error_class_ends_with_its_exit_code(
    error: BaseException,
    code: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = typer.Typer()

    @app.command()
    def fail() -> None:
        raise error

    app.callback()(lambda: None)
    monkeypatch.setattr(cli, "app", app)
    assert cli.main(["fail"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err


def test_a_bad_flag_exits_with_the_bad_input_code() -> None:
    assert cli.main(["render", "digits", "--no-such-flag"]) == cli.EXIT_USER_ERROR


def test_an_unreachable_cluster_exits_4_naming_the_context(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    assert cli.main(["status", "digits", "--context", "prod"]) == cli.EXIT_REFUSED
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: cannot load the Kubernetes configuration from context prod in "
        f"{tmp_path / 'missing-kubeconfig'}: "
    )


def documented(text: str) -> dict[int, tuple[str, set[str]]]:
    """The README's exit-code table: code → (meaning, the error classes it names)."""
    rows = re.findall(r"^\|\s*(\d)\s*\|([^|]*)\|([^|]*)\|$", text, flags=re.MULTILINE)
    return {
        int(code): (meaning.strip(), set(re.findall(r"`(\w+)`", errors)))
        for code, meaning, errors in rows
    }


README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_documents_the_exit_code_table() -> None:
    table = documented(README.read_text())
    assert table.pop(0) == ("done", set())
    assert table == {
        row.code: (row.meaning, {e.__name__ for e in row.errors} - {"TimonelError"})
        for row in cli.EXIT_CODES
    }


def test_help_shows_the_exit_codes() -> None:
    shown = " ".join(run("--help").stdout.split())
    for row in cli.EXIT_CODES:
        assert f"{row.code}: {row.meaning}" in shown
        for error in row.errors:
            assert error is TimonelError or error.__name__ in shown
