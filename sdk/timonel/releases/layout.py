"""Where a release lives in a model repository, in one place.

    <repo>/<model>/v<N>/timonel.json     the manifest, written last: it publishes the release
    <repo>/<model>/v<N>/<N>/             the SavedModel in TF Serving's layout (saved_model.pb, ...)
    <repo>/<model>/v<N>/.timonel-claim   written first, exclusively: which content may fill v<N>

A release's URI (``<repo>/<model>/v<N>``) handed to KServe's TensorFlow runtime as
``--model_base_path`` shows TF Serving exactly one numeric child, so it serves that version and
nothing else, however many releases are pushed beside it. ``<repo>/<model>`` is the model's URI:
``timonel serve`` reads every published release under it, with a version policy.
"""

from __future__ import annotations

import re

MANIFEST_NAME = "timonel.json"
#: Created (exclusively) before any upload; holds the content digest allowed to fill the release.
CLAIM_NAME = ".timonel-claim"

_RELEASE_DIR = re.compile(r"^v(\d+)$")
_VERSION_DIR = re.compile(r"^[+-]?\d+$")


def join(base: str, *parts: str) -> str:
    """Join URI or path segments with single slashes (works for ``gs://b``, ``/tmp/r``, ``s3://b/p``)."""
    out = base.rstrip("/")
    for part in parts:
        out = f"{out}/{part.strip('/')}"
    return out


def model_uri(repo: str, model: str) -> str:
    return join(repo, model)


def release_uri(repo: str, model: str, version: int) -> str:
    return join(repo, model, release_dirname(version))


def split_release_uri(uri: str) -> tuple[str, int] | None:
    """``gs://b/r/m/v3`` → ``("gs://b/r/m", 3)``; None when the last segment is not ``v<N>``."""
    base, _, name = uri.rstrip("/").rpartition("/")
    version = parse_release_dirname(name)
    return (base, version) if base and version is not None else None


def release_dirname(version: int) -> str:
    return f"v{version}"


def parse_release_dirname(name: str) -> int | None:
    """``v12`` → 12; anything else → None (not a release folder)."""
    match = _RELEASE_DIR.match(name)
    return int(match.group(1)) if match else None


def parse_version_dirname(name: str) -> int | None:
    """A TF Serving version folder: any name that parses as an int64 (``00000123`` is 123)."""
    if not _VERSION_DIR.match(name):
        return None
    value = int(name)
    return value if -(2**63) <= value < 2**63 else None
