"""Check a published release before it serves: it loads, its warmup runs, its signature fits.

``verify_release`` does what TF Serving does when it loads a version (load the SavedModel, replay
its warmup records), on the copy downloaded from the bucket, so a release that would never become
AVAILABLE fails a pipeline step instead of a rollout. ``signature_changes`` is pure: which
differences between the signature clients call today and the new one break those clients.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timonel.errors import ReleaseError
from timonel.releases.layout import parse_version_dirname
from timonel.releases.package import load_saved_model, replay_warmup
from timonel.releases.storage import download_release, read_manifest
from timonel.signatures import SignatureDef, TensorInfo
from timonel.tfserving import read_warmup, warmup_path


@dataclass(frozen=True)
class SignatureChange:
    """One difference between two serving signatures, and whether it breaks today's clients."""

    where: str
    change: str
    breaking: bool

    def __str__(self) -> str:
        return f"{self.where}: {self.change}" + (" (breaking)" if self.breaking else "")


def _accepts(old: tuple[int, ...] | None, new: tuple[int, ...] | None) -> bool:
    """Whether every tensor of shape ``old`` also fits ``new`` (-1 and None are any)."""
    if new is None:
        return True
    if old is None or len(old) != len(new):
        return False
    return all(n == -1 or o == n for o, n in zip(old, new, strict=True))


def _tensor_changes(
    kind: str, old: Mapping[str, TensorInfo], new: Mapping[str, TensorInfo]
) -> list[SignatureChange]:
    changes = []
    for key in sorted(old.keys() | new.keys()):
        where = f"{kind}.{key}"
        if key not in new:
            changes.append(SignatureChange(where, "removed", breaking=True))
        elif key not in old:
            # Clients do not send a new input (TF Serving refuses a request missing one); they
            # ignore a new output.
            changes.append(SignatureChange(where, "added", breaking=kind == "inputs"))
        elif old[key].dtype != new[key].dtype:
            change = f"dtype {old[key].dtype} -> {new[key].dtype}"
            changes.append(SignatureChange(where, change, breaking=True))
        elif old[key].shape != new[key].shape:
            # An input must take every shape it took; an output must stay one clients read.
            before, after = old[key].shape, new[key].shape
            fits = _accepts(before, after) if kind == "inputs" else _accepts(after, before)
            changes.append(SignatureChange(where, f"shape {before} -> {after}", not fits))
    return changes


def signature_changes(old: SignatureDef, new: SignatureDef) -> list[SignatureChange]:
    """What changed from ``old`` (served now) to ``new``, inputs first, by tensor name."""
    changes = _tensor_changes("inputs", old.inputs, new.inputs)
    changes += _tensor_changes("outputs", old.outputs, new.outputs)
    if old.method_name != new.method_name:
        change = f"method {old.method_name} -> {new.method_name}"
        changes.append(SignatureChange("method_name", change, breaking=True))
    return changes


def release_changes(
    served_uri: str, new_uri: str, *, storage_options: Mapping[str, Any] | None = None
) -> list[SignatureChange]:
    """``signature_changes`` between the default signatures of two published releases."""
    served = read_manifest(served_uri, storage_options=storage_options).signature
    new = read_manifest(new_uri, storage_options=storage_options).signature
    return signature_changes(served, new)


def verify_release(uri: str, *, storage_options: Mapping[str, Any] | None = None) -> int:
    """Download the release, load it and replay its warmup records as TF Serving will.

    Returns how many warmup records ran; a ModelError says which one failed and why.
    """
    manifest = read_manifest(uri, storage_options=storage_options)
    with tempfile.TemporaryDirectory(prefix="timonel-verify-") as scratch:
        folder = download_release(uri, Path(scratch) / "release", storage_options=storage_options)
        versions = [p for p in folder.iterdir() if parse_version_dirname(p.name) is not None]
        if len(versions) != 1:
            raise ReleaseError(
                f"{uri} holds {len(versions)} version folders, expected one; publish the model "
                "again with `timonel package`"
            )
        loaded = load_saved_model(versions[0])
        path = warmup_path(versions[0])
        requests = read_warmup(path) if path.is_file() else []
        replay_warmup(loaded, requests, manifest.signature_name)
        return len(requests)
