"""The storage edge and the read side of releases, on a folder, fake-gcs-server and moto."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import emulators
import pytest

from timonel.errors import ReleaseError, SpecError, StorageError
from timonel.releases.layout import MANIFEST_NAME, join, release_uri
from timonel.releases.manifest import FileEntry, Manifest
from timonel.releases.storage import (
    download_release,
    list_releases,
    normalize_uri,
    open_storage,
    read_manifest,
    split_uri,
)
from timonel.signatures import SignatureDef, TensorInfo

SIGNATURE = SignatureDef(
    inputs={"x": TensorInfo("DT_FLOAT", (-1,))},
    outputs={"y": TensorInfo("DT_FLOAT", (-1,))},
    method_name="tensorflow/serving/predict",
)


class Repo:
    """A fresh repository URI on one backend, with the options to reach it."""

    def __init__(self, uri: str, options: dict[str, Any]) -> None:
        self.uri = uri
        self.options = options
        self.storage = open_storage(uri, options)

    def write_release(
        self, model: str, version: int, files: dict[str, bytes], *, publish: bool = True
    ) -> str:
        """A release written by hand: its files, then (if ``publish``) its manifest."""
        uri = release_uri(self.uri, model, version)
        for path, data in files.items():
            self.storage.write_bytes(join(uri, path), data)
        if publish:
            manifest = Manifest(
                name=model,
                version=version,
                signature_name="serving_default",
                signatures={"serving_default": SIGNATURE},
                tensorflow_version="2.21.0",
                files=tuple(
                    FileEntry(path, len(data), hashlib.sha256(data).hexdigest())
                    for path, data in files.items()
                ),
                created="2026-01-01T00:00:00Z",
                source="tests",
                timonel_version="0",
            )
            self.storage.write_bytes(join(uri, MANIFEST_NAME), manifest.to_json().encode())
        return uri


@pytest.fixture(params=["file", "gs", "s3"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Repo:
    if request.param == "file":
        return Repo(str(tmp_path / "repo"), {})
    emulator: emulators.BucketEmulator = request.getfixturevalue(
        {"gs": "gcs_emulator", "s3": "s3_emulator"}[request.param]
    )
    return Repo(emulator.fresh_uri(), emulator.storage_options)


FILES = {"1/saved_model.pb": b"graph", "1/variables/variables.index": b"index" * 1000}


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("gs://b/m", ("gs", "b/m")),
        ("s3://b/m/", ("s3", "b/m")),
        ("file:///srv/r", ("file", "/srv/r")),
        ("/srv/r", ("file", "/srv/r")),
        ("GS://b", ("gs", "b")),
    ],
)
def test_split_uri(uri: str, expected: tuple[str, str]) -> None:
    assert split_uri(uri) == expected


def test_relative_paths_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalize_uri("build/repo") == str(tmp_path / "build" / "repo")
    assert normalize_uri("gs://b/r") == "gs://b/r"


def test_unknown_scheme_is_bad_input_that_says_what_is_supported() -> None:
    with pytest.raises(SpecError, match=r"the scheme hdfs:// is not supported; .* gs://, s3://"):
        open_storage("hdfs://nn/models")


def test_lists_only_published_releases(repo: Repo) -> None:
    repo.write_release("m", 1, FILES)
    repo.write_release("m", 2, FILES, publish=False)  # interrupted: no manifest
    repo.write_release("m", 10, FILES)
    repo.storage.write_bytes(join(repo.uri, "m", "notes.txt"), b"not a release")
    releases = list_releases(join(repo.uri, "m"), storage_options=repo.options)
    assert [r.version for r in releases] == [1, 10]
    assert releases[0].uri == release_uri(normalize_uri(repo.uri), "m", 1)
    assert releases[0].manifest.size_bytes == sum(len(d) for d in FILES.values())
    assert list_releases(join(repo.uri, "absent"), storage_options=repo.options) == []


def test_read_manifest_of_an_unpublished_release_says_so(repo: Repo) -> None:
    uri = repo.write_release("m", 1, FILES, publish=False)
    with pytest.raises(
        ReleaseError, match=r"no published release at .*: there is no timonel\.json"
    ):
        read_manifest(uri, storage_options=repo.options)


def test_download_verifies_and_mirrors_the_release(repo: Repo, tmp_path: Path) -> None:
    uri = repo.write_release(
        "m", 3, {"3/saved_model.pb": b"g", "3/variables/v": os.urandom(3 << 20)}
    )
    dest = download_release(uri, tmp_path / "cache" / "m-3", storage_options=repo.options)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "3/saved_model.pb",
        "3/variables/v",
        MANIFEST_NAME,
    ]
    assert read_manifest(str(dest)).version == 3
    # Already there: returned as is.
    assert download_release(uri, dest, storage_options=repo.options) == dest
    assert [p.name for p in dest.parent.iterdir()] == ["m-3"]


def test_download_into_an_existing_empty_folder(repo: Repo, tmp_path: Path) -> None:
    uri = repo.write_release("m", 1, FILES)
    dest = tmp_path / "staging"
    dest.mkdir()
    download_release(uri, dest, storage_options=repo.options)
    assert (dest / "1" / "saved_model.pb").read_bytes() == b"graph"


def test_download_refuses_a_changed_file_and_leaves_nothing(repo: Repo, tmp_path: Path) -> None:
    uri = repo.write_release("m", 1, FILES)
    repo.storage.write_bytes(join(uri, "1/saved_model.pb"), b"tampered")
    with pytest.raises(
        ReleaseError, match=r"1/saved_model.pb of release .* has SHA-256 .* changed or damaged"
    ):
        download_release(uri, tmp_path / "cache" / "dest", storage_options=repo.options)
    assert list((tmp_path / "cache").iterdir()) == []


def test_download_refuses_a_folder_holding_something_else(repo: Repo, tmp_path: Path) -> None:
    uri = repo.write_release("m", 1, FILES)
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "mine.txt").write_text("keep me")
    with pytest.raises(
        ReleaseError, match="the folder is not empty and does not hold this release"
    ):
        download_release(uri, tmp_path / "dest", storage_options=repo.options)
    assert (tmp_path / "dest" / "mine.txt").read_text() == "keep me"


def test_a_manifest_edited_after_publishing_is_refused(repo: Repo) -> None:
    uri = repo.write_release("m", 1, FILES)
    text = repo.storage.read_bytes(join(uri, MANIFEST_NAME))
    assert text is not None
    repo.storage.write_bytes(join(uri, MANIFEST_NAME), text.replace(b'"size": 5,', b'"size": 6,'))
    with pytest.raises(ReleaseError, match="it was changed after publishing"):
        read_manifest(uri, storage_options=repo.options)


def test_a_manifest_in_the_wrong_folder_is_refused(repo: Repo) -> None:
    uri = repo.write_release("m", 1, FILES)
    text = repo.storage.read_bytes(join(uri, MANIFEST_NAME))
    assert text is not None
    moved = release_uri(repo.uri, "m", 2)
    repo.storage.write_bytes(join(moved, MANIFEST_NAME), text)
    with pytest.raises(ReleaseError, match="holds a manifest for version 1"):
        read_manifest(moved, storage_options=repo.options)


def test_create_exclusive_lets_one_writer_in(repo: Repo) -> None:
    uri = join(repo.uri, "claim")
    assert repo.storage.create_exclusive(uri, b"first")
    assert not repo.storage.create_exclusive(uri, b"second")
    assert repo.storage.read_bytes(uri) == b"first"


def test_parallel_upload_streams_files_and_reports_bytes(repo: Repo, tmp_path: Path) -> None:
    sizes = [0, 1, 5 << 20, 9 << 20]
    local = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"f{i}"
        path.write_bytes(os.urandom(size))
        local.append(path)
    seen: list[int] = []
    done: list[str] = []
    pairs = [(path, join(repo.uri, "up", path.name)) for path in local]
    repo.storage.upload(pairs, workers=3, progress=seen.append, on_file_done=done.append)
    assert sum(seen) == sum(sizes)
    assert sorted(done) == sorted(uri for _, uri in pairs)
    assert repo.storage.list_files(join(repo.uri, "up")) == {
        p.name: s for p, s in zip(local, sizes, strict=True)
    }
    for path, uri in pairs:
        assert (
            repo.storage.download(uri, tmp_path / "back" / path.name)
            == hashlib.sha256(path.read_bytes()).hexdigest()
        )


def test_an_unreachable_bucket_is_a_storage_error(tmp_path: Path) -> None:
    port = emulators.free_port()
    storage = open_storage(
        "s3://nowhere",
        {
            "endpoint_url": f"http://127.0.0.1:{port}",
            "key": "k",
            "secret": "s",
            "config_kwargs": {"retries": {"max_attempts": 1}},
        },
    )
    with pytest.raises(StorageError, match=r"cannot list s3://nowhere/m: .*AWS_ACCESS_KEY_ID"):
        storage.list_names("s3://nowhere/m")


def test_a_registered_scheme_gets_releases_like_the_others(tmp_path: Path) -> None:
    import fsspec

    from timonel.releases.storage import Backend, register_backend

    class MemoryBackend(Backend):
        def filesystem(self, options: dict[str, Any]) -> Any:
            return fsspec.filesystem("memory", **options)

    register_backend("memory", MemoryBackend())
    repo = Repo("memory://timonel-test-repo", {})
    uri = repo.write_release("m", 1, FILES)
    assert repo.storage.create_exclusive(join(uri, "claim"), b"x")
    assert not repo.storage.create_exclusive(join(uri, "claim"), b"y")
    assert [r.version for r in list_releases("memory://timonel-test-repo/m")] == [1]
    dest = download_release(uri, tmp_path / "dest")
    assert (dest / "1" / "saved_model.pb").read_bytes() == b"graph"
