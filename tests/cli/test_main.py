"""The command line's contract: version, help, and one-line errors with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer

import timonel
from timonel import cli
from timonel.errors import SpecError


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
