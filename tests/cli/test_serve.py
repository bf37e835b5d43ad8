"""``timonel serve``'s command line: TF Serving's flags, one-line errors for a malformed one.

A malformed command line is a usage error (one line, exit 2, as every timonel command); options
the server cannot start with are TF Serving's startup failure (``tests/server/test_process.py``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata

import pytest

from timonel import cli
from timonel.cli.serve import flag_values, parser


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


#: Every flag tensorflow_model_server's ``model_servers/main.cc`` defines.
MAIN_CC_FLAGS = [
    "allow_version_labels_for_unavailable_models",
    "batching_parameters_file",
    "enable_batching",
    "enable_grpc_healthcheck_service",
    "enable_model_warmup",
    "enable_per_model_batching_parameters",
    "enable_profiler",
    "enable_serialization_as_tensor_content",
    "enable_signature_method_name_check",
    "file_system_poll_wait_seconds",
    "flush_filesystem_caches",
    "grpc_channel_arguments",
    "grpc_max_threads",
    "grpc_socket_path",
    "load_retry_interval_micros",
    "max_num_load_retries",
    "mixed_precision",
    "model_base_path",
    "model_config_file",
    "model_config_file_poll_wait_seconds",
    "model_name",
    "monitoring_config_file",
    "num_load_threads",
    "num_request_iterations_for_warmup",
    "num_tflite_interpreters_per_pool",
    "num_tflite_pools",
    "num_unload_threads",
    "per_process_gpu_memory_fraction",
    "platform_config_file",
    "port",
    "prefer_tflite_model",
    "remove_unused_fields_from_bundle_metagraph",
    "rest_api_enable_cors_support",
    "rest_api_num_threads",
    "rest_api_port",
    "rest_api_timeout_in_ms",
    "saved_model_tags",
    "skip_initialize_tpu",
    "ssl_config_file",
    "tensorflow_inter_op_parallelism",
    "tensorflow_intra_op_parallelism",
    "tensorflow_session_config_file",
    "tensorflow_session_parallelism",
    "thread_pool_factory_config_file",
    "use_alts_credentials",
    "version",
    "xla_cpu_compilation_enabled",
    "xla_gpu_compilation_enabled",
]


def test_help_lists_every_flag_of_tensorflow_model_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["serve", "--help"]) == 0
    listed = set(re.findall(r"--([a-z0-9_]+)", capsys.readouterr().out))
    assert set(MAIN_CC_FLAGS) - listed == set()


def test_flags_without_effect_here_are_under_their_own_heading(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli.main(["serve", "--help"])
    _, compatibility = capsys.readouterr().out.split("accepted for compatibility, no effect here")
    assert "--grpc_max_threads" in compatibility
    assert "--enable_batching" not in compatibility


def test_every_main_cc_flag_is_accepted() -> None:
    values, show_version = flag_values(
        [f"--{name}" if name.startswith(("enable_", "prefer_")) else f"--{name}=" + _sample(name)
         for name in MAIN_CC_FLAGS if name not in ("version", "use_alts_credentials")]
    )  # fmt: skip
    assert not show_version
    assert values["model_name"] == "m"


def _sample(name: str) -> str:
    """A value of the flag's type."""
    kind = {a.dest: a for a in parser()._actions}[name]
    if kind.type is int:
        return "1"
    if kind.type is float:
        return "0.5"
    if kind.metavar == "BOOL":
        return "false"
    return "m"


def test_version_prints_tf_servings_two_lines(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--version"]) == 0
    server, library = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"TensorFlow ModelServer: \d+\.\d+\.\d+\+timonel\..+", server)
    assert library == f"TensorFlow Library: {metadata.version('tensorflow')}"


def test_alts_credentials_are_refused_with_what_to_use_instead(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = cli.main(["serve", "--model_base_path=/m", "--use_alts_credentials"])
    assert code == cli.EXIT_USER_ERROR
    assert "use --ssl_config_file for TLS" in capsys.readouterr().err
