"""``timonel predict`` against a real ``timonel serve``: REST and gRPC print the same JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import serving
import tfmodels

from timonel import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[serving.Served]:
    base = tmp_path_factory.mktemp("models") / "half"
    tfmodels.write_half_plus_two(base / "1")
    with serving.timonel_serve("half", base, base.parent / "serve.log") as served:
        yield served


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["predict", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("transport", [[], ["--grpc"]], ids=["rest", "grpc"])
def test_predict_prints_the_reply(
    served: serving.Served, transport: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = served.rest if not transport else served.grpc.removeprefix("grpc://")
    code, out, err = run(
        capsys, "half", "--url", url, *transport, "--host-header", "half.default.example.com",
        "--version", "1", "--json", '{"instances": [1.0, 2.0]}',
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert json.loads(out) == {"predictions": [2.5, 3.0]}


def test_json_from_a_file_and_a_signature(
    served: serving.Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"inputs": {"x": [0.0]}}')
    code, out, _ = run(
        capsys, "half", "--url", served.rest, "--signature", "serving_default", "--json", f"@{body}"
    )
    assert code == 0
    assert json.loads(out) == {"outputs": [2.0]}


@pytest.mark.parametrize("transport", [[], ["--grpc"]], ids=["rest", "grpc"])
def test_a_server_error_is_one_line(
    served: serving.Served, transport: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = served.rest if not transport else served.grpc
    code, _, err = run(capsys, "nope", "--url", url, *transport, "--json", '{"instances": [1]}')
    assert code == cli.EXIT_REFUSED
    assert err == "error: Servable not found for request: Latest(nope)\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{nope", "error: --json is not valid JSON (Expecting property name enclosed in double"),
        ("[1, 2]", "error: --json must be a JSON object with 'instances' or 'inputs', got list"),
        ("@/no/such/file.json", "error: cannot read /no/such/file.json for --json: No such file"),
    ],
)
def test_bad_json_is_a_one_line_error(
    body: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "half", "--url", "http://127.0.0.1:9", "--json", body)
    assert code == cli.EXIT_USER_ERROR
    assert err.startswith(message)
    assert "Traceback" not in err


def test_version_and_label_together_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "half", "--url", "http://127.0.0.1:9", "--version", "1", "--label", "stable",
        "--json", '{"instances": [1]}',
    )  # fmt: skip
    assert code == cli.EXIT_USER_ERROR
    assert "both version 1 and label 'stable' were given for model 'half'" in err


@pytest.mark.parametrize("timeout", ["-1", "0", "nan"])
def test_a_timeout_that_is_not_seconds_above_zero_is_a_one_line_error(
    timeout: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        capsys, "half", "--url", "http://127.0.0.1:9", "--timeout", timeout,
        "--json", '{"instances": [1]}',
    )  # fmt: skip
    assert (code, out) == (cli.EXIT_USER_ERROR, "")
    assert err == (
        "error: timeout must be a finite number of seconds above 0 (how long each try of a call "
        f"may take), got {float(timeout)!r}; give e.g. 30\n"
    )
