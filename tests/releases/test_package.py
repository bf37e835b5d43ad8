"""SavedModel → release: validation, warmup, publishing (idempotent, interrupted, concurrent)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import emulators
import numpy as np
import pytest
import tensorflow as tf
import tfmodels

from timonel.errors import ModelError, ReleaseError, SpecError
from timonel.releases.layout import CLAIM_NAME, MANIFEST_NAME, join, parse_version_dirname
from timonel.releases.manifest import Manifest
from timonel.releases.package import (
    BATCHING_FILE,
    MODELS_CONFIG_FILE,
    MONITORING_FILE,
    SavedModelInfo,
    inspect_model,
    inspect_saved_model,
    package,
)
from timonel.releases.publish import discard_unpublished, publish
from timonel.releases.storage import download_release, list_releases, open_storage, read_manifest
from timonel.tfserving import (
    WARMUP_RELPATH,
    BatchingParameters,
    MonitoringConfig,
    parse_batching_parameters,
    parse_monitoring_config,
    read_models_config,
    read_warmup,
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "two": tfmodels.write_half_plus_two(root / "two"),
        "three": tfmodels.write_half_plus_two(root / "three", offset=3.0),
        "mlp": tfmodels.write_mlp(root / "mlp", features=8, hidden=4, classes=3),
    }


def backend(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> tuple[str, dict[str, Any]]:
    if kind == "file":
        return str(tmp_path / "repo"), {}
    fixture = {"gs": "gcs_emulator", "s3": "s3_emulator"}[kind]
    emulator: emulators.BucketEmulator = request.getfixturevalue(fixture)
    return emulator.fresh_uri(), emulator.storage_options


def serve_like_tf_serving(release_dir: Path, x: list[float]) -> list[float]:
    """Load the release folder the way TF Serving resolves a base path: its one numeric child."""
    versions = [p for p in release_dir.iterdir() if parse_version_dirname(p.name) is not None]
    assert len(versions) == 1
    loaded = tf.saved_model.load(str(versions[0]))
    out = loaded.signatures["serving_default"](x=tf.constant(x, tf.float32))
    return [float(v) for v in out["y"].numpy()]


def test_inspect_reads_signatures_dtypes_shapes_and_tf_version(models: dict[str, Path]) -> None:
    info = inspect_saved_model(models["mlp"])
    signature = info.signatures["serving_default"]
    assert signature.inputs["inputs"].dtype == "DT_FLOAT"
    assert signature.inputs["inputs"].shape == (-1, 8)
    assert signature.outputs["output_0"].shape == (-1, 3)
    assert signature.method_name == "tensorflow/serving/predict"
    assert info.tensorflow_version == tf.__version__
    assert info.size_bytes == sum(f.stat().st_size for f in models["mlp"].rglob("*") if f.is_file())


def test_package_publishes_a_release_tf_serving_can_load(
    models: dict[str, Path], tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    release = package(models["two"], name="half", repo=str(repo))
    assert release.uri == str(repo / "half" / "v1")
    manifest = release.manifest
    assert (manifest.name, manifest.version, manifest.signature_name) == (
        "half",
        1,
        "serving_default",
    )
    assert manifest.tensorflow_version == tf.__version__
    assert manifest.source == str(models["two"].resolve())
    assert manifest.warmup_records == 4  # batch sizes 1, 2, 4, 8: the batch dimension is open
    folder = Path(release.uri)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["1", MANIFEST_NAME, CLAIM_NAME])
    assert manifest.size_bytes == sum(f.size for f in manifest.files)
    assert {f.path for f in manifest.files} >= {"1/saved_model.pb", f"1/{WARMUP_RELPATH}"}
    logs = read_warmup(folder / "1" / WARMUP_RELPATH)
    assert [log.predict_log.request.model_spec.name for log in logs] == ["half"] * 4
    assert serve_like_tf_serving(folder, [2.0]) == [3.0]
    assert read_manifest(release.uri) == manifest
    assert json.loads((folder / MANIFEST_NAME).read_text())["size_bytes"] == manifest.size_bytes


def test_package_takes_the_next_version_and_is_idempotent(
    models: dict[str, Path], tmp_path: Path
) -> None:
    repo = str(tmp_path / "repo")
    first = package(models["two"], name="half", repo=repo)
    second = package(models["three"], name="half", repo=repo)
    assert (first.version, second.version) == (1, 2)
    again = package(models["three"], name="half", repo=repo, version=2)
    assert again.manifest.content_sha256 == second.manifest.content_sha256
    assert again.manifest.created == second.manifest.created  # the published one, untouched
    with pytest.raises(
        ReleaseError, match=r"version 1 of half is already published at .* with other content"
    ):
        package(models["three"], name="half", repo=repo, version=1)
    assert [r.version for r in list_releases(join(repo, "half"))] == [1, 2]


def test_a_pinned_release_keeps_serving_its_version(
    models: dict[str, Path], tmp_path: Path, gcs_emulator: emulators.BucketEmulator
) -> None:
    repo, options = gcs_emulator.fresh_uri(), gcs_emulator.storage_options
    pinned = package(models["two"], name="half", repo=repo, storage_options=options)
    newer = package(models["three"], name="half", repo=repo, storage_options=options)
    assert newer.version == 2
    v1 = download_release(pinned.uri, tmp_path / "v1", storage_options=options)
    v2 = download_release(newer.uri, tmp_path / "v2", storage_options=options)
    assert serve_like_tf_serving(v1, [1.0]) == [2.5]
    assert serve_like_tf_serving(v2, [1.0]) == [3.5]


class Interrupted(Exception):
    pass


def failing_after(k: int) -> Callable[[str], None]:
    done: list[str] = []

    def on_file_done(uri: str) -> None:
        done.append(uri)
        if len(done) >= k:
            raise Interrupted(f"stopped after {k} files")

    return on_file_done


def publish_model(folder: Path, repo: str, options: dict[str, Any], **kwargs: Any) -> Any:
    info = inspect_saved_model(folder)
    files = {f.relative_to(folder).as_posix(): f for f in folder.rglob("*") if f.is_file()}
    return publish(
        files,
        repo=repo,
        name="half",
        signature_name="serving_default",
        signatures=info.signatures,
        tensorflow_version=info.tensorflow_version,
        source=str(folder),
        storage_options=options,
        **kwargs,
    )


@pytest.mark.parametrize(
    ("kind", "k"), [("file", 1), ("file", 2), ("file", 4), ("gs", 1), ("gs", 3), ("s3", 2)]
)
def test_an_interrupted_publish_is_invisible_and_a_retry_succeeds(
    models: dict[str, Path], tmp_path: Path, request: pytest.FixtureRequest, kind: str, k: int
) -> None:
    repo, options = backend(request, tmp_path, kind)
    with pytest.raises(Interrupted):
        publish_model(
            models["two"], repo, options, version=1, workers=1, on_file_done=failing_after(k)
        )
    assert list_releases(join(repo, "half"), storage_options=options) == []
    with pytest.raises(ReleaseError, match="no published release"):
        read_manifest(join(repo, "half", "v1"), storage_options=options)
    # Other content cannot take over the unfinished version...
    with pytest.raises(ReleaseError, match="its publish was interrupted, with other content"):
        publish_model(models["three"], repo, options, version=1)
    # ...the same content resumes it, even without naming the version.
    release = publish_model(models["two"], repo, options, version=None)
    assert release.version == 1
    dest = download_release(release.uri, tmp_path / "dest", storage_options=options)
    assert serve_like_tf_serving(dest, [0.0]) == [2.0]


@pytest.mark.parametrize("kind", ["file", "gs", "s3"])
def test_concurrent_publishes_of_one_version_never_mix(
    models: dict[str, Path], tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    repo, options = backend(request, tmp_path, kind)
    barrier = threading.Barrier(2, timeout=30)
    outcomes: dict[str, Any] = {}

    def run(label: str) -> None:
        barrier.wait()
        try:
            outcomes[label] = publish_model(models[label], repo, options, version=1, workers=2)
        except ReleaseError as exc:
            outcomes[label] = exc

    threads = [threading.Thread(target=run, args=(label,)) for label in ("two", "three")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    winners = [label for label, out in outcomes.items() if not isinstance(out, Exception)]
    assert len(winners) == 1, outcomes
    loser = ({"two", "three"} - set(winners)).pop()
    assert "with other content" in str(outcomes[loser])
    dest = download_release(join(repo, "half", "v1"), tmp_path / "dest", storage_options=options)
    expected = {"two": [3.0], "three": [4.0]}[winners[0]]
    assert serve_like_tf_serving(dest, [2.0]) == expected


def test_concurrent_publishes_of_the_same_content_both_succeed(
    models: dict[str, Path], gcs_emulator: emulators.BucketEmulator
) -> None:
    repo, options = gcs_emulator.fresh_uri(), gcs_emulator.storage_options
    barrier = threading.Barrier(2, timeout=30)
    results: list[Any] = []

    def run() -> None:
        barrier.wait()
        results.append(publish_model(models["two"], repo, options, version=1))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(results) == 2
    assert results[0].manifest.content_sha256 == results[1].manifest.content_sha256
    assert (
        read_manifest(results[0].uri, storage_options=options).content_sha256
        == results[0].manifest.content_sha256
    )


def test_examples_become_warmup_records(models: dict[str, Path], tmp_path: Path) -> None:
    examples = tmp_path / "examples.json"
    examples.write_text(json.dumps([{"instances": [1.0, 2.0]}, {"inputs": {"x": [3.0]}}]))
    release = package(models["two"], name="half", repo=str(tmp_path / "repo"), examples=examples)
    assert release.manifest.warmup_records == 2
    logs = read_warmup(Path(release.uri) / "1" / WARMUP_RELPATH)
    assert tf.make_ndarray(logs[1].predict_log.request.inputs["x"]).tolist() == [3.0]


def test_examples_the_model_rejects_are_refused_before_publishing(
    models: dict[str, Path], tmp_path: Path
) -> None:
    examples = tmp_path / "examples.json"
    examples.write_text(json.dumps({"instances": [[1.0, 2.0, 3.0]]}))  # the MLP takes 8 features
    with pytest.raises(
        ModelError, match="warmup record 0 fails on the model, so TF Serving would fail the load"
    ):
        package(models["mlp"], name="mlp", repo=str(tmp_path / "repo"), examples=examples)
    assert not (tmp_path / "repo").exists()


def test_more_than_1000_examples_are_refused(models: dict[str, Path], tmp_path: Path) -> None:
    examples = tmp_path / "examples.json"
    examples.write_text(json.dumps([{"instances": [1.0]}] * 1001))
    with pytest.raises(ModelError, match="1001 warmup records given"):
        package(models["two"], name="half", repo=str(tmp_path / "repo"), examples=examples)


def test_tf_serving_config_files_ride_along(models: dict[str, Path], tmp_path: Path) -> None:
    release = package(
        models["mlp"],
        name="mlp",
        repo=str(tmp_path / "repo"),
        warmup=False,
        batching=BatchingParameters(max_batch_size=32, batch_timeout_micros=2000),
        monitoring=MonitoringConfig(),
        models_config=True,
    )
    folder = Path(release.uri)
    (served,) = read_models_config(folder / MODELS_CONFIG_FILE)
    assert (served.name, served.base_path) == ("mlp", "/mnt/models")
    assert parse_batching_parameters((folder / BATCHING_FILE).read_text()).max_batch_size == 32
    assert parse_monitoring_config((folder / MONITORING_FILE).read_text()).prometheus_enabled
    assert release.manifest.warmup_records == 0
    assert not (folder / "1" / WARMUP_RELPATH).exists()


def test_keras_models_and_tf_modules_are_exported(tmp_path: Path) -> None:
    keras_model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])
    release = package(keras_model, name="k", repo=str(tmp_path / "repo"))
    assert release.manifest.signature.inputs[
        next(iter(release.manifest.signature.inputs))
    ].shape == (-1, 3)
    assert release.manifest.source.startswith("exported keras")

    class Doubler(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)])
        def __call__(self, v: tf.Tensor) -> tf.Tensor:
            return v * 2

    module_release = package(Doubler(), name="d", repo=str(tmp_path / "repo"))
    assert module_release.manifest.signature.inputs["v"].dtype == "DT_INT64"


def test_what_is_not_servable_is_refused_with_the_reason(
    tmp_path: Path, models: dict[str, Path]
) -> None:
    repo = str(tmp_path / "repo")
    with pytest.raises(ModelError, match=r"is not a SavedModel: it has no saved_model\.pb"):
        package(tmp_path, name="m", repo=repo)
    with pytest.raises(
        ModelError, match=r"has no serving signature 'predict'; it has \['serving_default'\]"
    ):
        package(models["two"], name="m", repo=repo, signature_name="predict")

    class Half(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float16)])
        def __call__(self, v: tf.Tensor) -> tf.Tensor:
            return v

    with pytest.raises(
        ModelError, match="input 'v' has dtype DT_HALF, which TF Serving cannot carry over REST"
    ):
        package(Half(), name="h", repo=repo)

    bare = tf.Module()
    bare.v = tf.Variable(1.0)
    with pytest.raises(ModelError, match="has no serving signature; export it with one"):
        package(bare, name="b", repo=repo)
    for bad in ("a/b", "Half_Plus", "2half"):
        with pytest.raises(SpecError, match=f"model name '{bad}' cannot name an InferenceService"):
            package(models["two"], name=bad, repo=repo)


def test_discard_an_unfinished_release_to_publish_other_content(
    models: dict[str, Path], tmp_path: Path
) -> None:
    repo = str(tmp_path / "repo")
    with pytest.raises(Interrupted):
        publish_model(models["two"], repo, {}, version=1, workers=1, on_file_done=failing_after(1))
    discard_unpublished(join(repo, "half", "v1"))
    assert publish_model(models["three"], repo, {}, version=1).version == 1
    with pytest.raises(ReleaseError, match="is a published release and releases never change"):
        discard_unpublished(join(repo, "half", "v1"))


def test_inspect_a_release_or_a_saved_model(
    models: dict[str, Path], gcs_emulator: emulators.BucketEmulator
) -> None:
    repo, options = gcs_emulator.fresh_uri(), gcs_emulator.storage_options
    release = package(models["mlp"], name="mlp", repo=repo, storage_options=options)
    assert isinstance(inspect_model(release.uri, storage_options=options), Manifest)
    assert isinstance(inspect_model(str(models["mlp"])), SavedModelInfo)
    remote = join(repo, "raw")
    storage = open_storage(remote, options)
    storage.upload([(models["mlp"] / "saved_model.pb", join(remote, "saved_model.pb"))])
    info = inspect_model(remote, storage_options=options)
    assert isinstance(info, SavedModelInfo)
    assert info.signatures["serving_default"].inputs["inputs"].shape == (-1, 8)
    assert np.isfinite(info.size_bytes)
