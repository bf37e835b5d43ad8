"""KServe's storage initializer, locally: copy a predictor's ``storageUri`` into its model folder.

On a cluster an init container copies everything under ``storageUri`` to ``/mnt/models`` before
TF Serving starts, and a copy that fails keeps the pod from starting; its last log lines become
the reason KServe reports (``modelStatus.lastFailureInfo``). Here ``run_logged`` does the same for
one revision: it fetches into a temporary folder, logs what it did, and publishes the folder
(with a ``.complete`` marker) only when the copy finished, so a revision never serves half a model.

``fetch_model`` is the fetch. A Timonel release (a folder with ``timonel.json``) is downloaded
with ``timonel.releases.storage.download_release``, which verifies every file against the manifest's
checksums; anything else is copied file by file as it is, as KServe's initializer copies it. Every
bucket is reached through ``timonel.releases.storage`` (plain paths, ``file://``, ``gs://``, ``s3://``).

Like KServe's init container, a copy from a bucket runs as a process of its own
(``initializer_command``, run by the supervisor): a copy stalled on an unreachable bucket is then
ended by terminating the process, so stopping a revision or the whole local cluster never waits for
the network. The process exits with code 1 and the reason on stderr (its termination message) when
the copy fails. A local folder (a path or ``file://``) has no network to stall on, so it is copied
in the supervisor's own process instead (``copy_here``), without paying for a Python process's
start: a stop ends that copy at its next chunk (``CopyStopped``).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import shutil
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from timonel.errors import StorageError, TimonelError
from timonel.releases.layout import MANIFEST_NAME, join

#: Written into a model folder once its copy is complete.
COMPLETE_MARKER = ".complete"


@dataclass(frozen=True)
class InitializerArgs:
    """What the storage initializer of one revision is given."""

    storage_uri: str
    model_dir: Path
    log_path: Path


class CopyStopped(Exception):
    """A copy in this process ended early because its revision was stopped (never shown to a
    user: the supervisor that asked for the stop expects it)."""


def initializer_command(args: InitializerArgs) -> list[str] | None:
    """This module as a process: copy ``storage_uri`` into ``model_dir``, log to ``log_path``.

    None for a local folder (a path or ``file://``), which ``copy_here`` copies in the caller's
    process.
    """
    from timonel.releases.storage import split_uri

    if split_uri(args.storage_uri)[0] == "file":
        return None
    return [
        sys.executable,
        "-m",
        __name__,
        args.storage_uri,
        str(args.model_dir),
        str(args.log_path),
    ]


def copy_here(args: InitializerArgs, stopping: threading.Event) -> None:
    """The copy, in this process; raises CopyStopped at the next chunk once ``stopping`` is set."""

    def check(_: int = 0) -> None:
        if stopping.is_set():
            raise CopyStopped(f"stopped while copying {args.storage_uri}")

    check()
    fetch = functools.partial(fetch_model, progress=check)
    run_logged(fetch, args.storage_uri, args.model_dir, args.log_path)


def run_logged(
    fetch: Callable[[str, Path], None], storage_uri: str, model_dir: Path, log_path: Path
) -> None:
    """Fetch ``storage_uri`` into ``model_dir`` atomically, appending what happened to a log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    staging = model_dir.with_name(model_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(model_dir, ignore_errors=True)
    staging.mkdir(parents=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(f"{_now()} copying {storage_uri} to {model_dir}\n")
        log.flush()
        try:
            fetch(storage_uri, staging)
        except CopyStopped:
            log.write(f"{_now()} stopped: the revision was stopped before its copy finished\n")
            shutil.rmtree(staging, ignore_errors=True)
            raise
        except TimonelError as exc:
            log.write(f"{_now()} failed: {exc}\n")
            shutil.rmtree(staging, ignore_errors=True)
            raise
        except Exception as exc:  # a library error the fetch did not translate
            log.write(f"{_now()} failed: {type(exc).__name__}: {exc}\n")
            shutil.rmtree(staging, ignore_errors=True)
            raise StorageError(
                f"could not copy {storage_uri}: {type(exc).__name__}: {exc}; check that the URI "
                "exists and that this machine can read it"
            ) from exc
        staging.rename(model_dir)
        (model_dir / COMPLETE_MARKER).touch()
        log.write(f"{_now()} done\n")


def fetch_model(
    storage_uri: str, dest: Path, *, progress: Callable[[int], None] | None = None
) -> None:
    """Copy what ``storage_uri`` holds into ``dest``, verifying Timonel releases; ``progress``
    gets the bytes of each chunk copied (and may raise to end the copy)."""
    from timonel.releases.storage import open_storage

    storage = open_storage(storage_uri)
    if storage.exists(join(storage_uri, MANIFEST_NAME)):
        from timonel.releases.storage import download_release

        download_release(storage_uri, dest, progress=progress)
        return
    files = storage.list_files(storage_uri)
    if not files:
        raise StorageError(
            f"Failed to fetch model. No model found in {storage_uri}: expected a Timonel "
            "release (timonel.json) or TF Serving version folders (1/saved_model.pb); check the "
            "storageUri, or publish the release before deploying it"
        )
    storage.download_many(
        [(join(storage_uri, name), dest / name) for name in sorted(files)], progress=progress
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}")
    parser.add_argument("storage_uri")
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("log_path", type=Path)
    args = parser.parse_args(argv)
    try:
        run_logged(fetch_model, args.storage_uri, args.model_dir, args.log_path)
    except TimonelError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


if __name__ == "__main__":
    sys.exit(main())
