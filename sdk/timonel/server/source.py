"""Version discovery under a model's base path: TF Serving's layout plus Timonel releases.

TF Serving serves every child folder whose name parses as an int64 (``00000123`` is version 123)
and ignores the rest. Timonel releases (``v<N>/`` with the SavedModel in ``v<N>/<N>/``) count once
their manifest is written, since the manifest is what publishes a release; a release folder
without it is still being uploaded and is ignored.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from timonel.errors import ServingError
from timonel.releases import layout


@dataclass(frozen=True)
class Entry:
    """One child of a base path, as much as discovery needs to know of it."""

    name: str
    is_dir: bool
    has_manifest: bool = False


def local_path(base_path: str) -> str:
    """A local folder from a ``--model_base_path`` (a path or a ``file://`` URI)."""
    return base_path.removeprefix("file://")


def versions_from_entries(base_path: str, entries: Iterable[Entry]) -> dict[int, str]:
    """Version number → SavedModel folder, from the children of a base path. Pure."""
    found: dict[int, str] = {}
    releases: dict[int, str] = {}
    for entry in entries:
        if not entry.is_dir:
            continue
        version = layout.parse_version_dirname(entry.name)
        if version is not None:
            found[version] = layout.join(base_path, entry.name)
            continue
        release = layout.parse_release_dirname(entry.name)
        if release is not None and entry.has_manifest:
            releases[release] = layout.join(base_path, entry.name, str(release))
    # A plain version folder wins over a release of the same number: it is what TF Serving sees.
    return {**releases, **found}


def discover_versions(model_name: str, base_path: str) -> dict[int, str]:
    """The versions under a local base path; a missing path is TF Serving's NOT_FOUND."""
    root = local_path(base_path)
    try:
        with os.scandir(root) as children:
            entries = [
                Entry(
                    child.name,
                    child.is_dir(),
                    os.path.isfile(os.path.join(child.path, layout.MANIFEST_NAME)),
                )
                for child in children
            ]
    except OSError as exc:
        raise ServingError(
            f"Could not find base path {base_path} for servable {model_name} with error "
            f"NOT_FOUND: {root}; {exc.strerror or 'No such file or directory'}",
            code="NOT_FOUND",
        ) from exc
    return versions_from_entries(root, entries)
