"""``timonel serve``: a TF-Serving-compatible model server, with tensorflow_model_server's flags.

The flags keep TF Serving's names and syntax (``--port=8500``, ``--port 8500``, a bare
``--enable_batching`` or ``--enable_model_warmup=false``), so a Docker command line or a KServe
container spec carries over unchanged. Click cannot read booleans both bare and with ``=false``,
so this one command hands its arguments to argparse, which can. A malformed command line is one
line and exit 2, as every timonel command (argparse's usage dump would bury the reason); a
server that cannot start says ``Failed to start server. Error: ...`` and exits 1, as TF Serving.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from typing import Any, NoReturn

import typer

from timonel.errors import SpecError
from timonel.server.options import ServerOptions

_HELP = "Serve SavedModels over TF Serving's REST and gRPC APIs (tensorflow_model_server flags)."

_FLAGS: dict[str, str] = {
    "port": "gRPC port (0 disables gRPC).",
    "rest_api_port": "REST API port (0 disables REST; must differ from --port).",
    "host": "Address both APIs listen on.",
    "model_name": "Name of the model when --model_base_path is used.",
    "model_base_path": "Folder holding numeric version folders or Timonel releases (path or file://).",
    "model_config_file": (
        "Text ModelServerConfig (models.config); wins over --model_name/--model_base_path."
    ),
    "model_config_file_poll_wait_seconds": "Re-read --model_config_file this often (0: read once).",
    "file_system_poll_wait_seconds": "Look for new versions this often (0: once at startup).",
    "enable_batching": "Merge concurrent requests into one model call.",
    "batching_parameters_file": "Text BatchingParameters (needs --enable_batching).",
    "monitoring_config_file": "Text MonitoringConfig: Prometheus metrics on the REST port.",
    "rest_api_timeout_in_ms": (
        "Model call timeout of a REST request (gRPC: the client's deadline); 0: none."
    ),
    "allow_version_labels_for_unavailable_models": "Let labels point at versions not loaded yet.",
    "enable_model_warmup": "Replay assets.extra/tf_serving_warmup_requests at load.",
    "max_num_load_retries": "Retries of a failed version load.",
    "load_retry_interval_micros": "Wait between load retries.",
    "rest_api_max_body_bytes": "Largest REST request body; larger bodies get 413.",
    "tensorflow_intra_op_parallelism": (
        "Threads inside one op (0: the CPUs the process may use, cgroup quota included, "
        "shared among the threads that make model calls)."
    ),
    "tensorflow_inter_op_parallelism": (
        "Ops run in parallel, and model calls at once (0: one per CPU the process may use; "
        "-1: every call in the request's own thread, where timeouts cannot stop it)."
    ),
    "grpc_socket_path": "Also serve gRPC on this Unix socket (relative or absolute path).",
    "grpc_channel_arguments": (
        "gRPC arguments key=value,... (grpc.max_concurrent_streams, grpc.max_connection_age_ms, "
        "grpc.max_connection_age_grace_ms, grpc.max_connection_idle_ms, grpc.keepalive_time_ms, "
        "grpc.keepalive_timeout_ms, grpc.server_handshake_timeout_ms, "
        "grpc.max_receive_message_length apply; others are ignored)."
    ),
    "enable_signature_method_name_check": (
        "Refuse signatures whose method_name does not match the API (off: TF2 models classify)."
    ),
    "saved_model_tags": "Comma-separated tags of the MetaGraph to load.",
    "tensorflow_session_config_file": "Text ConfigProto for the sessions (flags override it).",
    "tensorflow_session_parallelism": "Intra- and inter-op threads when neither is set (0: auto).",
    "per_process_gpu_memory_fraction": "Fraction of GPU memory each session may take (0: TF's).",
    "ssl_config_file": "Text SSLConfig: serve gRPC over TLS.",
    "platform_config_file": (
        "Text PlatformConfigMap; checked that it reads, then batching flags are ignored as in "
        "TF Serving (its session settings are not applied here)."
    ),
    "enable_grpc_healthcheck_service": "Serve grpc.health.v1.Health.",
    "enable_serialization_as_tensor_content": "Predict answers in tensor_content.",
    "num_request_iterations_for_warmup": "Times each warmup record runs (0: once).",
    "rest_api_enable_cors_support": "Add CORS headers to REST answers.",
}

#: tensorflow_model_server flags accepted for compatibility whose effect means nothing here:
#: name → (type, default, why). A manifest written for the tensorflow/serving image starts.
_NO_EFFECT: dict[str, tuple[type, Any, str]] = {
    "rest_api_num_threads": (int, 0, "REST runs on one event loop; model calls on TF's pools"),
    "grpc_max_threads": (int, 0, "gRPC runs on the REST API's event loop, not a thread pool"),
    "num_load_threads": (int, 0, "versions load one at a time, TF Serving's default"),
    "num_unload_threads": (int, 0, "versions unload one at a time, TF Serving's default"),
    "flush_filesystem_caches": (bool, True, "TensorFlow's file systems keep no cache here"),
    "enable_per_model_batching_parameters": (
        bool, False, "one batching configuration (--batching_parameters_file) serves every model"
    ),
    "remove_unused_fields_from_bundle_metagraph": (
        bool, True, "only signatures are kept of the MetaGraph"
    ),
    "prefer_tflite_model": (
        bool, False, "TF Lite is not built in; SavedModels load, TF Serving's fallback"
    ),
    "num_tflite_pools": (int, 0, "TF Lite is not built in"),
    "num_tflite_interpreters_per_pool": (int, 1, "TF Lite is not built in"),
    "xla_cpu_compilation_enabled": (bool, False, "XLA follows TensorFlow's own defaults"),
    "xla_gpu_compilation_enabled": (bool, False, "XLA follows TensorFlow's own defaults"),
    "enable_profiler": (bool, True, "no TensorFlow profiler service is served"),
    "thread_pool_factory_config_file": (str, "", "model calls run on TensorFlow's own pools"),
    "mixed_precision": (str, "", "models run in the precision they were saved in"),
    "skip_initialize_tpu": (bool, False, "there is no TPU to initialise"),
    "use_alts_credentials": (bool, False, "ALTS runs only on Google Cloud; refused when true"),
}  # fmt: skip


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


class _Parser(argparse.ArgumentParser):
    """argparse, raising a ``SpecError`` for a malformed command line instead of printing the
    usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise SpecError(f"{message}; see `{self.prog} --help`")


_TYPES: dict[object, type] = {"bool": bool, "int": int, "float": float, "str": str}


def _add_flag(
    parse: argparse.ArgumentParser | argparse._ArgumentGroup,
    name: str,
    kind: type,
    default: Any,
    help: str,
) -> None:
    if kind is bool:
        parse.add_argument(
            f"--{name}",
            type=_bool,
            nargs="?",
            const=True,
            default=default,
            metavar="BOOL",
            help=f"{help} (default {str(default).lower()})",
        )
    else:
        parse.add_argument(
            f"--{name}", type=kind, default=default, help=f"{help} (default {default!r})"
        )


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``timonel serve``: every flag of tensorflow_model_server's
    ``main.cc`` (defaults from ``ServerOptions``) and timonel's own."""
    parse = _Parser(prog="timonel serve", description=_HELP, allow_abbrev=False)
    for item in fields(ServerOptions):
        if item.name in _FLAGS:
            _add_flag(parse, item.name, _TYPES[item.type], item.default, _FLAGS[item.name])
    compatibility = parse.add_argument_group("accepted for compatibility, no effect here")
    for name, (kind, default, why) in _NO_EFFECT.items():
        _add_flag(compatibility, name, kind, default, f"No effect: {why}.")
    parse.add_argument(
        "--version", action="store_true", help="Print the server and TensorFlow versions."
    )
    return parse


def flag_values(args: list[str]) -> tuple[dict[str, Any], bool]:
    """``ServerOptions`` fields from a command line, and whether it asks for ``--version``;
    ``SpecError`` for a malformed one, or a flag whose upstream effect cannot be had here."""
    values = vars(parser().parse_args(args))
    show_version = values.pop("version")
    if values["use_alts_credentials"]:
        raise SpecError(
            "--use_alts_credentials: ALTS works only between Google Cloud machines; use "
            "--ssl_config_file for TLS"
        )
    for name in _NO_EFFECT:
        values.pop(name)
    return values, show_version


def version_text() -> str:
    """What ``--version`` prints: TF Serving's two lines, naming the API version served."""
    from importlib import metadata

    return (
        f"TensorFlow ModelServer: {metadata.version('tensorflow-serving-api')}"
        f"+timonel.{metadata.version('timonel')}\n"
        f"TensorFlow Library: {metadata.version('tensorflow')}\n"
    )


def options_from_args(args: list[str]) -> ServerOptions:
    """``ServerOptions`` from a command line; ``SpecError`` for a malformed one or options the
    server cannot start with."""
    return ServerOptions(**flag_values(args)[0])


def register(app: typer.Typer) -> None:
    @app.command(
        "serve",
        help=_HELP,
        add_help_option=False,
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    def serve(ctx: typer.Context) -> None:
        from timonel.errors import ServingError, TimonelError
        from timonel.server import serve as run_server
        from timonel.server.app import configure_logging

        # a malformed command line: one line, exit 2
        values, show_version = flag_values(list(ctx.args))
        if show_version:
            print(version_text(), end="")
            return
        try:
            options = ServerOptions(**values)
        except SpecError as exc:
            print(f"Failed to start server. Error: INVALID_ARGUMENT: {exc}", file=sys.stderr)
            raise typer.Exit(1) from exc
        configure_logging()
        try:
            run_server(options)
        except TimonelError as exc:
            code = exc.code if isinstance(exc, ServingError) else "INVALID_ARGUMENT"
            print(f"Failed to start server. Error: {code}: {exc}", file=sys.stderr)
            raise typer.Exit(1) from exc
