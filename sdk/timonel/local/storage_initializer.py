"""KServe's storage initializer, locally: copy a predictor's ``storageUri`` into its model folder.

On a cluster an init container copies everything under ``storageUri`` to ``/mnt/models`` before
TF Serving starts, and a copy that fails keeps the pod from starting; its last log lines become
the reason KServe reports (``modelStatus.lastFailureInfo``). Here ``run_logged`` does the same for
one revision: it fetches into a temporary folder, logs what it did, and publishes the folder
(with a ``.complete`` marker) only when the copy finished, so a revision never serves half a model.

``fetch_model`` is the default fetch. A Timonel release (a folder with ``timonel.json``) is
downloaded with ``timonel.storage.download_release``, which verifies every file against the
manifest's checksums; anything else is copied file by file as it is, as KServe's initializer
copies it, through ``timonel.storage`` (plain paths, ``file://``, ``gs://``, ``s3://``).
"""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Callable
from pathlib import Path

from timonel.errors import StorageError, TimonelError
from timonel.layout import MANIFEST_NAME, join

#: Written into a model folder once its copy is complete.
COMPLETE_MARKER = ".complete"


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


def fetch_model(storage_uri: str, dest: Path) -> None:
    """Copy what ``storage_uri`` holds into ``dest``, verifying Timonel releases."""
    from timonel.storage import open_storage

    storage = open_storage(storage_uri)
    if storage.exists(join(storage_uri, MANIFEST_NAME)):
        from timonel.storage import download_release

        download_release(storage_uri, dest)
        return
    files = storage.list_files(storage_uri)
    if not files:
        raise StorageError(
            f"Failed to fetch model. No model found in {storage_uri}: expected a Timonel "
            "release (timonel.json) or TF Serving version folders (1/saved_model.pb); check the "
            "storageUri, or publish the release before deploying it"
        )
    storage.download_many([(join(storage_uri, name), dest / name) for name in sorted(files)])


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
