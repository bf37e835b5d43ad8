"""Model repositories on ``file://`` (and plain paths), ``gs://`` and ``s3://``, through fsspec.

Readers of releases start here: ``list_releases(model_uri)`` (published releases only: a release
without its manifest does not exist yet), ``read_manifest(release_uri)`` and
``download_release(release_uri, dest_dir)``, which verifies every file against the manifest's
SHA-256 as it streams, as KServe's storage initializer would need to.

This is the I/O edge of packaging: everything that touches a bucket or a folder goes through a
``Storage``, so the release logic above it is the same for every scheme. A scheme maps to a
``Backend`` in one registry (``register_backend``); each backend builds the fsspec filesystem with
credentials from the environment, as gcsfs and s3fs do (Application Default Credentials or
Workload Identity on GKE; AWS variables, profiles or IAM roles), and supplies the two things
fsspec does not do the same way everywhere:

- an exclusive create (the object appears only if nothing is there yet): GCS
  ``ifGenerationMatch=0`` and S3 ``If-None-Match: *`` through gcsfs/s3fs ``mode="create"``; a
  hard link of a complete temporary file on a local disk, since fsspec's local filesystem
  ignores that mode. Releases are claimed with it, because object stores have no atomic rename.
- a whole-file upload that streams in fixed chunks (memory stays flat for multi-GB variable
  shards) and never shows a partial file: object stores publish an object when its upload
  completes; locally we write a temporary name and rename it into place.

Uploads and downloads of many files run on a thread pool; downloads hash while they stream.
"""

from __future__ import annotations

import abc
import hashlib
import io
import os
import re
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from fsspec.callbacks import Callback

from timonel.errors import ReleaseError, SpecError, StorageError, TimonelError
from timonel.releases.layout import MANIFEST_NAME, join, parse_release_dirname, split_release_uri
from timonel.releases.manifest import Manifest, parse_manifest

#: Bytes read or written at a time while streaming through local files and downloads.
CHUNK_BYTES = 8 * 2**20
#: Bytes per part of an S3 multipart upload; each file in flight holds about one part in
#: memory, so memory is about workers x this, whatever the model's size.
UPLOAD_CHUNK_BYTES = 8 * 2**20
#: Files moved at once by ``upload``/``download_many``.
DEFAULT_WORKERS = 4

#: Receives the number of bytes just moved; called from worker threads.
ProgressFn = Callable[[int], None]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_T = TypeVar("_T")
_R = TypeVar("_R")


def split_uri(uri: str) -> tuple[str, str]:
    """``gs://b/m`` → ``("gs", "b/m")``; a plain path → ``("file", absolute path)``."""
    match = _SCHEME.match(uri)
    if not match:
        return "file", os.path.abspath(os.path.expanduser(uri))
    scheme = match.group(1).lower()
    rest = uri[match.end() :]
    if scheme == "file":
        return "file", os.path.abspath(rest or "/")
    return scheme, rest.rstrip("/")


def normalize_uri(uri: str) -> str:
    """The canonical spelling of a repository URI: local paths absolute and scheme-less."""
    scheme, rest = split_uri(uri)
    return rest if scheme == "file" else f"{scheme}://{rest}"


class Backend(abc.ABC):
    """How one URI scheme is reached. Subclass and ``register_backend`` to add a scheme."""

    #: What to check when access fails, named in error messages.
    credentials_hint = "check the path and its permissions"

    @abc.abstractmethod
    def filesystem(self, options: Mapping[str, Any]) -> Any:
        """The fsspec filesystem for this scheme, built from the storage options."""

    def create_exclusive(self, fs: Any, path: str, data: bytes) -> bool:
        """Write ``data`` at ``path`` only if nothing is there; False if something was."""
        try:
            fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
        return True

    def put_file(self, fs: Any, local: Path, path: str, progress: ProgressFn) -> None:
        """Upload one file, streaming; the remote file appears whole or not at all."""
        fs.put_file(str(local), path, callback=_Progress(progress))


class LocalBackend(Backend):
    credentials_hint = "check the folder exists and is writable"

    def filesystem(self, options: Mapping[str, Any]) -> Any:
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(auto_mkdir=True, **options)

    def create_exclusive(self, fs: Any, path: str, data: bytes) -> bool:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = _temporary_sibling(target)
        temporary.write_bytes(data)
        try:
            os.link(temporary, target)  # fails if target exists; readers never see it partial
        except FileExistsError:
            return False
        finally:
            temporary.unlink()
        return True

    def put_file(self, fs: Any, local: Path, path: str, progress: ProgressFn) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = _temporary_sibling(target)
        try:
            with local.open("rb") as src, temporary.open("wb") as dst:
                while chunk := src.read(CHUNK_BYTES):
                    dst.write(chunk)
                    progress(len(chunk))
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)


class GCSBackend(Backend):
    credentials_hint = (
        "check the bucket exists and the credentials may use it "
        "(GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login, or Workload "
        "Identity on GKE)"
    )

    def filesystem(self, options: Mapping[str, Any]) -> Any:
        opts = dict(options)
        if opts.get("endpoint_url") or os.environ.get("STORAGE_EMULATOR_HOST"):
            # gcsfs's default class first asks the Storage Control API over gRPC for the
            # bucket's layout (zonal, hierarchical); emulators serve only the JSON API, so that
            # probe stalls until it times out. The core class speaks only the JSON API.
            from gcsfs.core import GCSFileSystem

            opts.setdefault("token", "anon")
        else:
            from gcsfs import GCSFileSystem
        return GCSFileSystem(**opts)

    def put_file(self, fs: Any, local: Path, path: str, progress: ProgressFn) -> None:
        # One streamed single-request upload (uploadType=media) per file, on gcsfs's
        # authenticated session. gcsfs's own put_file sends resumable chunks, each read whole
        # into memory (and copied again by the socket buffer), so memory grows with chunk size
        # times the files in flight; a streamed body keeps it at aiohttp's small buffers, and
        # takes one request per file. A failed request is retried by gcsfs from the start of the
        # file, and a failed publish resumes with the files that are missing.
        bucket, key, _ = fs.split_path(path)
        size = local.stat().st_size
        with local.open("rb") as file:
            fs.call(
                "POST",
                f"{fs._location}/upload/storage/v1/b/{{}}/o",
                bucket,
                uploadType="media",
                name=key,
                data=_CountingReader(file, progress),
                headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                json_out=True,
            )
        fs.invalidate_cache(path)


class S3Backend(Backend):
    credentials_hint = (
        "check the bucket exists and the credentials may use it "
        "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or an IAM role)"
    )

    def filesystem(self, options: Mapping[str, Any]) -> Any:
        from s3fs import S3FileSystem

        return S3FileSystem(**options)

    def put_file(self, fs: Any, local: Path, path: str, progress: ProgressFn) -> None:
        # One part in flight per file: files already upload in parallel, and each part is
        # held in memory while it is sent.
        fs.put_file(
            str(local),
            path,
            chunksize=UPLOAD_CHUNK_BYTES,
            max_concurrency=1,
            callback=_Progress(progress),
        )


_BACKENDS: dict[str, Backend] = {
    "file": LocalBackend(),
    "gs": GCSBackend(),
    "gcs": GCSBackend(),
    "s3": S3Backend(),
}


def register_backend(scheme: str, backend: Backend) -> None:
    """Serve ``<scheme>://`` URIs with ``backend`` (e.g. an fsspec filesystem of your own)."""
    _BACKENDS[scheme.lower()] = backend


def open_storage(uri: str, options: Mapping[str, Any] | None = None) -> Storage:
    """The storage that holds ``uri``; ``options`` go to the fsspec filesystem.

    Examples of options: ``{"endpoint_url": "http://127.0.0.1:4443"}`` for a GCS or S3
    emulator, ``{"project": "my-project"}`` for gcsfs, ``{"anon": True}`` for s3fs.
    """
    scheme, _ = split_uri(uri)
    backend = _BACKENDS.get(scheme)
    if backend is None:
        known = ", ".join(f"{name}://" for name in sorted(_BACKENDS))
        raise SpecError(  # bad input, found before any storage is reached
            f"no storage for {uri!r}: the scheme {scheme}:// is not supported; "
            f"use a local path or one of {known}"
        )
    with _translate("open", uri, backend):
        fs = backend.filesystem(dict(options or {}))
    return Storage(scheme, backend, fs)


class Storage:
    """One scheme's filesystem, addressed with full URIs (or local paths)."""

    def __init__(self, scheme: str, backend: Backend, fs: Any) -> None:
        self.scheme = scheme
        self.backend = backend
        self.fs = fs

    def _path(self, uri: str) -> str:
        scheme, rest = split_uri(uri)
        if scheme != self.scheme and {scheme, self.scheme} != {"gs", "gcs"}:
            raise StorageError(
                f"{uri!r} is not on this {self.scheme}:// storage; open a storage for its scheme"
            )
        return rest

    def _fresh(self, path: str) -> None:
        # gcsfs and s3fs cache listings; another process may have published since.
        self.fs.invalidate_cache(path)

    def exists(self, uri: str) -> bool:
        path = self._path(uri)
        with _translate("check", uri, self.backend):
            self._fresh(path)
            return bool(self.fs.exists(path))

    def read_bytes(self, uri: str) -> bytes | None:
        """The content of a file, or None when there is no file at ``uri``."""
        path = self._path(uri)
        with _translate("read", uri, self.backend):
            self._fresh(path)
            try:
                return bytes(self.fs.cat_file(path))
            except FileNotFoundError:
                return None

    def list_names(self, uri: str) -> list[str]:
        """Names of the direct children of a folder (files and folders); [] if it is absent."""
        path = self._path(uri)
        with _translate("list", uri, self.backend):
            self._fresh(path)
            try:
                entries = self.fs.ls(path, detail=False)
            except FileNotFoundError:
                return []
        return sorted({str(entry).rstrip("/").rsplit("/", 1)[-1] for entry in entries})

    def list_files(self, uri: str) -> dict[str, int]:
        """Every file under a folder: path relative to it → size."""
        path = self._path(uri)
        with _translate("list", uri, self.backend):
            self._fresh(path)
            found = self.fs.find(path, detail=True)
        prefix = path.rstrip("/") + "/"
        return {
            name[len(prefix) :]: int(info["size"])
            for name, info in found.items()
            if info.get("type") == "file" and name.startswith(prefix)
        }

    def write_bytes(self, uri: str, data: bytes) -> None:
        path = self._path(uri)
        with _translate("write", uri, self.backend):
            self.fs.pipe_file(path, data)

    def create_exclusive(self, uri: str, data: bytes) -> bool:
        """Write ``data`` only if nothing is at ``uri`` (atomic); False if something was."""
        path = self._path(uri)
        with _translate("create", uri, self.backend):
            created = self.backend.create_exclusive(self.fs, path, data)
            self.fs.invalidate_cache(path)
            return created

    def remove(self, uri: str) -> None:
        """Delete a file or a whole folder; nothing there is not an error."""
        path = self._path(uri)
        with _translate("delete", uri, self.backend):
            self._fresh(path)
            if self.fs.exists(path):
                self.fs.rm(path, recursive=True)

    def upload(
        self,
        files: Sequence[tuple[Path, str]],
        *,
        workers: int = DEFAULT_WORKERS,
        progress: ProgressFn | None = None,
        on_file_done: Callable[[str], None] | None = None,
    ) -> None:
        """Upload ``(local file, remote URI)`` pairs in parallel, streaming each file.

        ``on_file_done`` is called with each remote URI once its upload has completed.
        """
        report = _locked(progress)

        def put(pair: tuple[Path, str]) -> None:
            local, uri = pair
            with _translate("upload to", uri, self.backend):
                self.backend.put_file(self.fs, local, self._path(uri), report)
            if on_file_done:
                on_file_done(uri)

        parallel_map(put, files, workers)

    def download(self, uri: str, local: Path, *, progress: ProgressFn | None = None) -> str:
        """Stream a file to ``local`` and return the SHA-256 of what was written."""
        report = progress or _ignore
        digest = hashlib.sha256()
        local.parent.mkdir(parents=True, exist_ok=True)
        with (
            _translate("download", uri, self.backend),
            self.fs.open(self._path(uri), "rb", block_size=CHUNK_BYTES) as src,
            local.open("wb") as dst,
        ):
            while chunk := src.read(CHUNK_BYTES):
                digest.update(chunk)
                dst.write(chunk)
                report(len(chunk))
        return digest.hexdigest()

    def download_many(
        self,
        files: Sequence[tuple[str, Path]],
        *,
        workers: int = DEFAULT_WORKERS,
        progress: ProgressFn | None = None,
    ) -> list[str]:
        """Download ``(remote URI, local file)`` pairs in parallel; their SHA-256s, in order."""
        report = _locked(progress)

        def get(pair: tuple[str, Path]) -> str:
            return self.download(pair[0], pair[1], progress=report)

        return parallel_map(get, files, workers)


@dataclass(frozen=True)
class Release:
    """A published release: its URI (what KServe's ``storageUri`` takes) and its manifest."""

    uri: str
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> int:
        return self.manifest.version


def read_manifest(
    release_uri: str, *, storage_options: Mapping[str, Any] | None = None
) -> Manifest:
    """The manifest of the release at ``release_uri``; a ``ReleaseError`` if it is unpublished."""
    storage = open_storage(release_uri, storage_options)
    return _fetch_manifest(storage, normalize_uri(release_uri))[0]


def list_releases(
    model_uri: str, *, storage_options: Mapping[str, Any] | None = None
) -> list[Release]:
    """The published releases of a model (``<repo>/<model>``), oldest version first.

    Release folders without a manifest (being published, or interrupted) are not releases.
    """
    storage = open_storage(model_uri, storage_options)
    base = normalize_uri(model_uri)
    releases = []
    for name in storage.list_names(base):
        if parse_release_dirname(name) is None:
            continue
        uri = join(base, name)
        text = storage.read_bytes(join(uri, MANIFEST_NAME))
        if text is not None:
            releases.append(Release(uri, _checked(parse_manifest(text, source=uri), uri)))
    return sorted(releases, key=lambda release: release.version)


def download_release(
    release_uri: str,
    dest_dir: str | Path,
    *,
    storage_options: Mapping[str, Any] | None = None,
    workers: int = DEFAULT_WORKERS,
    progress: ProgressFn | None = None,
) -> Path:
    """Copy a published release into ``dest_dir`` (absent or empty) and verify every file.

    ``dest_dir`` then mirrors the release folder (``timonel.json`` and ``<N>/``), so it can be
    TF Serving's ``--model_base_path``. Files land in a temporary sibling folder that is renamed
    into place only once all of them match the manifest, so a failed or interrupted download
    leaves nothing behind. A ``dest_dir`` already holding this same release is returned as is.
    """
    storage = open_storage(release_uri, storage_options)
    uri = normalize_uri(release_uri)
    manifest, text = _fetch_manifest(storage, uri)
    dest = Path(dest_dir)
    if dest.exists() and any(dest.iterdir()):
        if _holds_release(dest, manifest):
            return dest
        raise ReleaseError(
            f"cannot download {uri} into {dest}: the folder is not empty and does not hold this "
            "release; give an empty or new folder"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        pairs = [(join(uri, entry.path), partial / entry.path) for entry in manifest.files]
        digests = storage.download_many(pairs, workers=workers, progress=progress)
        for entry, digest in zip(manifest.files, digests, strict=True):
            size = (partial / entry.path).stat().st_size
            if (digest, size) != (entry.sha256, entry.size):
                raise ReleaseError(
                    f"{entry.path} of release {uri} has SHA-256 {digest} and {size} bytes, the "
                    f"manifest records {entry.sha256} and {entry.size}: the release was changed "
                    "or damaged after publishing; publish the model again under a new version"
                )
        (partial / MANIFEST_NAME).write_bytes(text)
        if dest.exists():
            dest.rmdir()
        partial.rename(dest)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return dest


def _fetch_manifest(storage: Storage, uri: str) -> tuple[Manifest, bytes]:
    text = storage.read_bytes(join(uri, MANIFEST_NAME))
    if text is None:
        raise ReleaseError(
            f"no published release at {uri}: there is no {MANIFEST_NAME} (never published, or "
            "its publish did not finish); check the URI with `timonel releases`, or publish "
            "again with `timonel package`"
        )
    return _checked(parse_manifest(text, source=uri), uri), text


def _checked(manifest: Manifest, uri: str) -> Manifest:
    where = split_release_uri(uri)
    if where is not None and where[1] != manifest.version:
        raise ReleaseError(
            f"the release folder {uri} holds a manifest for version {manifest.version}: the "
            "release was moved or copied by hand; publish it again under its own version"
        )
    return manifest


def _holds_release(folder: Path, manifest: Manifest) -> bool:
    """Whether ``folder`` is a finished download of ``manifest``'s release (names and sizes)."""
    local = folder / MANIFEST_NAME
    if not local.is_file():
        return False
    try:
        held = parse_manifest(local.read_bytes(), source=str(local))
    except ReleaseError:
        return False
    return held.content_sha256 == manifest.content_sha256 and all(
        (folder / entry.path).is_file() and (folder / entry.path).stat().st_size == entry.size
        for entry in manifest.files
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def parallel_map(fn: Callable[[_T], _R], items: Sequence[_T], workers: int) -> list[_R]:
    """``[fn(item) for item in items]`` on a thread pool; the first error stops what has not
    started and is raised once the running calls are done."""
    if workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="timonel-io") as pool:
        futures: list[Future[_R]] = [pool.submit(fn, item) for item in items]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [future for future in done if future.exception() is not None]
        if failed:
            for future in futures:
                future.cancel()
            wait(futures)
            error = failed[0].exception()
            assert error is not None
            raise error
        return [future.result() for future in futures]


@contextmanager
def _translate(action: str, uri: str, backend: Backend) -> Iterator[None]:
    """fsspec, gcsfs, s3fs and their HTTP clients fail in many types; callers see one."""
    try:
        yield
    except TimonelError:
        raise
    except Exception as exc:
        if not _is_storage_failure(exc):
            raise
        reason = str(exc) or type(exc).__name__
        raise StorageError(f"cannot {action} {uri}: {reason}; {backend.credentials_hint}") from exc


def _is_storage_failure(exc: BaseException) -> bool:
    if isinstance(exc, OSError | TimeoutError):
        return True
    module = type(exc).__module__.split(".")[0]
    return module in {"gcsfs", "google", "botocore", "aiobotocore", "s3fs", "aiohttp", "fsspec"}


def _temporary_sibling(target: Path) -> Path:
    return target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")


def _ignore(_: int) -> None:
    return None


def _locked(progress: ProgressFn | None) -> ProgressFn:
    if progress is None:
        return _ignore
    lock = threading.Lock()

    def report(count: int) -> None:
        with lock:
            progress(count)

    return report


class _CountingReader(io.RawIOBase):
    """A file read by an HTTP client, reporting the bytes it hands out."""

    def __init__(self, file: BinaryIO, progress: ProgressFn) -> None:
        super().__init__()
        self._file = file
        self._progress = progress

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer: Any) -> int:
        count = self._file.readinto(buffer)  # type: ignore[attr-defined]  # BinaryIO declares no readinto; files opened 'rb' have it
        if count:
            self._progress(count)
        return count or 0


class _Progress(Callback):  # type: ignore[misc]  # fsspec has no type information: Callback is Any
    """Turns fsspec's progress (gcsfs reports totals, s3fs increments) into byte deltas."""

    def __init__(self, progress: ProgressFn) -> None:
        super().__init__()
        self._progress = progress
        self._reported = 0

    def call(self, hook_name: str | None = None, **kwargs: Any) -> None:
        delta = self.value - self._reported
        if delta > 0:
            self._reported = self.value
            self._progress(delta)


__all__ = [
    "CHUNK_BYTES",
    "DEFAULT_WORKERS",
    "UPLOAD_CHUNK_BYTES",
    "Backend",
    "GCSBackend",
    "LocalBackend",
    "Release",
    "S3Backend",
    "Storage",
    "download_release",
    "list_releases",
    "normalize_uri",
    "open_storage",
    "parallel_map",
    "read_manifest",
    "register_backend",
    "sha256_file",
    "split_uri",
]
