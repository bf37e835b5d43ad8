"""Publishing a release into a model repository: once, never changed, safe on object stores.

Object stores have no atomic rename, so a release is published in three steps:

- a claim object (``.timonel-claim``) is created exclusively before any upload and carries the
  digest of the content; a publisher with other content is refused, one with the same content (a
  retry, or a twin running at the same time) goes on and writes the same bytes;
- files already uploaded with their full size are skipped, so a retry resumes;
- the manifest is created last, exclusively: until it exists readers ignore the release, and
  once it exists nothing is uploaded into it again.

So an interrupted publish leaves nothing visible and can be retried, a published version never
changes, and two publishers never mix their files.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from timonel._version import __version__
from timonel.errors import ReleaseError, SpecError
from timonel.kserve.admission import check_name
from timonel.releases.layout import (
    CLAIM_NAME,
    MANIFEST_NAME,
    join,
    model_uri,
    parse_release_dirname,
    release_dirname,
)
from timonel.releases.manifest import FileEntry, Manifest, parse_manifest
from timonel.releases.storage import (
    DEFAULT_WORKERS,
    ProgressFn,
    Release,
    Storage,
    normalize_uri,
    open_storage,
    parallel_map,
    sha256_file,
)
from timonel.signatures import SignatureDef

#: How many next versions an automatically numbered publish tries when others take them first.
_AUTO_VERSION_ATTEMPTS = 5


def publish(
    model_files: Mapping[str, Path],
    *,
    repo: str,
    name: str,
    version: int | None,
    signature_name: str,
    signatures: Mapping[str, SignatureDef],
    tensorflow_version: str,
    source: str,
    extra_files: Mapping[str, Path] | None = None,
    warmup_records: int = 0,
    storage_options: Mapping[str, Any] | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: ProgressFn | None = None,
    on_file_done: Any = None,
) -> Release:
    """Publish files as release ``<repo>/<name>/v<version>``: ``model_files`` (path in the
    SavedModel → local file) go into ``<version>/``, ``extra_files`` beside it.

    Idempotent for the same content; refuses other content for a version that is published or
    claimed. With ``version`` None it takes the next free version (resuming an interrupted
    publish of the same content). ``on_file_done(uri)`` is called after each upload.
    """
    check_model_name(name)
    if version is not None and version < 0:
        raise SpecError(
            f"version {version} is negative; give a version of 0 or more", field="version"
        )
    storage = open_storage(repo, storage_options)
    model = model_uri(normalize_uri(repo), name)
    local = {**{f"{{v}}/{k}": p for k, p in model_files.items()}, **dict(extra_files or {})}
    digests = dict(
        zip(local, parallel_map(sha256_file, list(local.values()), workers), strict=True)
    )
    sizes = {key: path.stat().st_size for key, path in local.items()}

    def manifest_for(number: int) -> tuple[Manifest, dict[str, Path]]:
        files = {key.replace("{v}", str(number), 1): path for key, path in local.items()}
        entries = tuple(
            FileEntry(key.replace("{v}", str(number), 1), sizes[key], digests[key]) for key in local
        )
        manifest = Manifest(
            name=name,
            version=number,
            signature_name=signature_name,
            signatures=dict(signatures),
            tensorflow_version=tensorflow_version,
            files=entries,
            created=_now(),
            source=source,
            timonel_version=__version__,
            warmup_records=warmup_records,
        )
        return manifest, files

    if version is not None:
        manifest, files = manifest_for(version)
        return _publish_version(storage, model, manifest, files, workers, progress, on_file_done)

    candidate = _next_version(storage, model, lambda n: manifest_for(n)[0].content_sha256)
    for _ in range(_AUTO_VERSION_ATTEMPTS):
        manifest, files = manifest_for(candidate)
        try:
            return _publish_version(
                storage, model, manifest, files, workers, progress, on_file_done
            )
        except _Taken:
            candidate = max(candidate + 1, _next_version(storage, model, None))
    raise ReleaseError(
        f"other publishers took {_AUTO_VERSION_ATTEMPTS} versions of {name} in a row while this "
        "publish tried them; publish again, or give --version"
    )


def discard_unpublished(release: str, *, storage_options: Mapping[str, Any] | None = None) -> None:
    """Delete a release folder whose publish never finished (it has no manifest).

    Needed only to publish *other* content under a version whose publish was interrupted; a
    published release is refused: releases never change.
    """
    storage = open_storage(release, storage_options)
    uri = normalize_uri(release)
    if storage.exists(join(uri, MANIFEST_NAME)):
        raise ReleaseError(
            f"{uri} is a published release and releases never change; publish a new version instead"
        )
    storage.remove(uri)


class _Taken(ReleaseError):
    """The version is published or claimed with other content (auto-numbering moves on)."""


def _publish_version(
    storage: Storage,
    model: str,
    manifest: Manifest,
    files: Mapping[str, Path],
    workers: int,
    progress: ProgressFn | None,
    on_file_done: Any,
) -> Release:
    uri = join(model, release_dirname(manifest.version))
    published = _published(storage, uri)
    if published is not None:
        if published.content_sha256 == manifest.content_sha256:
            return Release(uri, published)
        raise _Taken(
            f"version {manifest.version} of {manifest.name} is already published at {uri} with "
            f"other content (created {published.created} from {published.source}); releases "
            "never change: publish under a new version (leave out --version to take the next)"
        )
    claim = {
        "content_sha256": manifest.content_sha256,
        "created": manifest.created,
        "source": manifest.source,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    claim_uri = join(uri, CLAIM_NAME)
    if not storage.create_exclusive(claim_uri, json.dumps(claim).encode()):
        holder = _read_claim(storage, claim_uri)
        if holder.get("content_sha256") != manifest.content_sha256:
            raise _Taken(
                f"version {manifest.version} of {manifest.name} is being published, or its "
                f"publish was interrupted, with other content (claimed {holder.get('created')} "
                f"by {holder.get('host')}, from {holder.get('source')}); publish under a new "
                f"version, or discard the unfinished release with `timonel releases "
                f"{manifest.name} --repo ... --discard {manifest.version}`"
            )
    present = storage.list_files(uri)
    todo = [
        (path, join(uri, relpath))
        for relpath, path in sorted(files.items())
        if present.get(relpath) != path.stat().st_size
    ]
    storage.upload(todo, workers=workers, progress=progress, on_file_done=on_file_done)
    if not storage.create_exclusive(join(uri, MANIFEST_NAME), manifest.to_json().encode()):
        winner = _published(storage, uri)
        if winner is None or winner.content_sha256 != manifest.content_sha256:
            raise ReleaseError(
                f"{uri} was published by another publisher with other content while this one "
                "uploaded; publish under a new version"
            )
        return Release(uri, winner)
    return Release(uri, manifest)


def _published(storage: Storage, uri: str) -> Manifest | None:
    text = storage.read_bytes(join(uri, MANIFEST_NAME))
    return None if text is None else parse_manifest(text, source=uri)


def _read_claim(storage: Storage, uri: str) -> dict[str, Any]:
    text = storage.read_bytes(uri)
    try:
        data = json.loads(text or b"{}")
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


def _next_version(storage: Storage, model: str, digest_for: Any) -> int:
    """One past the highest release folder, or that folder itself when it is an unfinished
    publish of this same content (``digest_for(version)``), so a plain retry resumes it."""
    versions = [v for v in map(parse_release_dirname, storage.list_names(model)) if v is not None]
    if not versions:
        return 1
    top = max(versions)
    if digest_for is not None:
        uri = join(model, release_dirname(top))
        if _published(storage, uri) is None:
            claim = _read_claim(storage, join(uri, CLAIM_NAME))
            if claim.get("content_sha256") == digest_for(top):
                return top
    return top + 1


def check_model_name(name: str) -> None:
    """The model's name becomes its InferenceService's name (and TF Serving's model name), so it
    follows KServe's name rule from the start rather than failing at deploy time."""
    try:
        check_name(name, mode="Knative", field="name")
    except SpecError as exc:
        raise SpecError(
            f"model name {name!r} cannot name an InferenceService, which serves it under the same "
            f"name: {exc}",
            field="name",
        ) from exc


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
