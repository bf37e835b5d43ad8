"""The ``timonel`` command: parses flags, calls the SDK, prints. No logic of its own.

Each command group lives in its own module beside this one and is registered in ``_GROUPS``;
heavy imports (TensorFlow, kfp, cloud SDKs) happen inside the commands, so ``timonel --help``
stays fast on a machine that only renders manifests.
"""

from __future__ import annotations

import importlib
import logging
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

import typer
from rich.console import Console
from rich.markup import escape

from timonel._version import __version__
from timonel.cli.tensorflow_logs import quiet_tensorflow_start_up
from timonel.errors import (
    ApiError,
    ClusterUnreachable,
    EvidenceUnreachable,
    ModelError,
    ReleaseError,
    RolloutFailed,
    ServingError,
    SpecError,
    StorageError,
    TimonelError,
    WaitTimeout,
)


@dataclass(frozen=True)
class ExitCode:
    """One row of the exit-code table: scripts and pipelines branch on the code, people read
    the meaning; ``errors`` are the classes that end a command with it."""

    code: int
    meaning: str
    errors: tuple[type[TimonelError], ...] = ()


EXIT_UNEXPECTED = 1
EXIT_USER_ERROR = 2
EXIT_ROLLED_BACK = 3
EXIT_REFUSED = 4
EXIT_TIMED_OUT = 5

#: What ``timonel`` exits with, by the error that ended it; ``timonel --help`` and the README
#: show this table. A ``StorageError`` is a refusal, not bad input: the URI has been parsed by
#: then, so what failed is the bucket's service (credentials, permissions, network). A
#: ``TimonelError`` of no finer class counts as bad input, as every one did before the table.
EXIT_CODES: tuple[ExitCode, ...] = (
    ExitCode(EXIT_UNEXPECTED, "unexpected: a bug in timonel; run again with --debug, report it"),
    ExitCode(
        EXIT_USER_ERROR,
        "bad input: a flag, spec, model or release that cannot be used as given",
        (SpecError, ModelError, ReleaseError, TimonelError),
    ),
    ExitCode(EXIT_ROLLED_BACK, "a rollout measured a regression and rolled back", (RolloutFailed,)),
    ExitCode(
        EXIT_REFUSED,
        "the cluster, the model server, the bucket or a rollout's evidence source refused the "
        "call or cannot be reached",
        (ApiError, ClusterUnreachable, EvidenceUnreachable, ServingError, StorageError),
    ),
    ExitCode(EXIT_TIMED_OUT, "a wait timed out", (WaitTimeout,)),
)

_CODE_OF: dict[type[TimonelError], int] = {
    error: row.code for row in EXIT_CODES for error in row.errors
}


def exit_code(error: TimonelError) -> int:
    """The code of the error's nearest class in ``EXIT_CODES``."""
    return next(_CODE_OF[cls] for cls in type(error).__mro__ if cls in _CODE_OF)


def _exit_codes_help() -> str:
    """The table as ``timonel --help`` shows it: one paragraph per code."""
    rows = ["Exit codes:", "0: done"]
    for row in EXIT_CODES:
        named = [error.__name__ for error in row.errors if error is not TimonelError]
        if row.code == EXIT_USER_ERROR:
            named.append("a bad flag")
        rows.append(f"{row.code}: {row.meaning}" + (f" ({', '.join(named)})" if named else ""))
    return "\n\n".join(rows)


app = typer.Typer(
    name="timonel",
    help="Ship TensorFlow models from Kubeflow Pipelines to TensorFlow Serving on KServe and GKE.",
    epilog=_exit_codes_help(),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: Command modules under ``timonel.cli``, in the order of the flow; each exposes ``register(app)``.
_GROUPS: tuple[str, ...] = (
    "packaging",
    "render",
    "kserve",
    "cluster",
    "logs",
    "rollout",
    "serve",
    "predict",
    "local",
    "pipeline",
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"timonel {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_show_version,
        is_eager=True,
        help="Print the version.",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback on errors."),
) -> None:
    """Global options; ``main`` reads ``--debug`` from the arguments before parsing starts, so
    that errors raised while parsing are reported with it too."""


for _group in _GROUPS:
    importlib.import_module(f"timonel.cli.{_group}").register(app)

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def _route_library_logs(*, debug: bool) -> None:
    """Libraries (gcsfs, botocore, kubernetes) log their retries and tracebacks to stderr; the CLI
    reports the error they end in as one line, so their logs show only with ``--debug``."""
    if debug:
        logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
    elif not logging.getLogger().handlers:
        logging.getLogger().addHandler(logging.NullHandler())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line. Whatever goes wrong ends as one line on stderr, never a traceback
    (``--debug`` shows it), and an exit code from ``EXIT_CODES``: a bad flag exits with 2, a bug
    with 1.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    _route_library_logs(debug=debug)
    if not debug and next((a for a in args if not a.startswith("-")), "") != "serve":
        quiet_tensorflow_start_up()  # serve's log is TF Serving's, start-up lines included
    command = typer.main.get_command(app)
    try:
        result = command.main(args=args, prog_name="timonel", standalone_mode=False)
    except SystemExit as exc:  # commands that hand over to argparse or exit on their own
        return exc.code if isinstance(exc.code, int) else 0
    except TimonelError as exc:
        return _fail(str(exc), exit_code(exc), debug=debug)
    except typer.TyperException as exc:  # click's bad flags and arguments: usage errors
        code = int(getattr(exc, "exit_code", EXIT_USER_ERROR))
        reason = exc.format_message().rstrip(".")
        if not reason:  # a bare group: its help is already printed
            return code
        context = getattr(exc, "ctx", None)
        where = context.command_path if context is not None else "timonel"
        return _fail(f"{reason}; see `{where} --help`", code, debug=debug)
    except (typer.Abort, KeyboardInterrupt):
        stderr.print("aborted")
        return 130
    except Exception as exc:
        message = (
            f"unexpected {type(exc).__name__}: {exc}; this is a bug in timonel: run the command "
            "again with --debug and report the traceback"
        )
        return _fail(message, EXIT_UNEXPECTED, debug=debug)
    return result if isinstance(result, int) else 0


def _fail(message: str, code: int, *, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    stderr.print(f"[bold red]error:[/] {escape(message)}")
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
