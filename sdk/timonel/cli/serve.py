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
    "tensorflow_intra_op_parallelism": "Threads inside one op (0: TensorFlow's choice).",
    "tensorflow_inter_op_parallelism": (
        "Ops run in parallel (0: TensorFlow's choice; -1: every call in the request's own "
        "thread, where timeouts cannot stop it)."
    ),
}


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


def parser() -> argparse.ArgumentParser:
    """The argument parser of ``timonel serve`` (defaults from ``ServerOptions``)."""
    parse = _Parser(prog="timonel serve", description=_HELP, allow_abbrev=False)
    for item in fields(ServerOptions):
        if item.name not in _FLAGS:
            continue
        flag = f"--{item.name}"
        if item.type in ("bool", bool):
            parse.add_argument(
                flag,
                type=_bool,
                nargs="?",
                const=True,
                default=item.default,
                metavar="BOOL",
                help=f"{_FLAGS[item.name]} (default {str(item.default).lower()})",
            )
        else:
            kind = int if item.type in ("int", int) else str
            parse.add_argument(
                flag,
                type=kind,
                default=item.default,
                help=f"{_FLAGS[item.name]} (default {item.default!r})",
            )
    return parse


def flag_values(args: list[str]) -> dict[str, Any]:
    """``ServerOptions`` fields from a command line; ``SpecError`` for a malformed one."""
    return vars(parser().parse_args(args))


def options_from_args(args: list[str]) -> ServerOptions:
    """``ServerOptions`` from a command line; ``SpecError`` for a malformed one or options the
    server cannot start with."""
    return ServerOptions(**flag_values(args))


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

        values = flag_values(list(ctx.args))  # a malformed command line: one line, exit 2
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
