"""The controller running the real ``timonel serve`` on published releases (file and gs://).

Slow: every revision is a TensorFlow process. The faster ``test_controller.py`` covers the same
status logic with a stand-in server. Predictions, REST and gRPC, go through the ingress.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import tfmodels
from emulators import BucketEmulator
from kubernetes import client

from timonel.local.controller import Controller

from .kubeapi import GROUP, PLURAL, VERSION
from .test_controller import (
    NAMESPACE,
    canary_change,
    condition,
    host_of,
    ingress_of,
    manifest,
    predict,
    ready_at,
    served,
    settled,
    traffic,
    update,
    wait_for,
)

pytestmark = pytest.mark.slow

#: A TensorFlow process starts in seconds, slower when the machine is busy.
SERVE_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def api(kube_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_client)


@pytest.fixture(scope="module")
def ingress(serving_controller: Controller) -> Iterator[str]:
    with ingress_of(serving_controller) as url:
        yield url


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """half_plus_two SavedModels: v1 answers 0.5x+2, v2 answers 0.5x+3."""
    root = tmp_path_factory.mktemp("savedmodels")
    return {
        "v1": tfmodels.write_half_plus_two(root / "v1", offset=2.0),
        "v2": tfmodels.write_half_plus_two(root / "v2", offset=3.0),
    }


@pytest.fixture(scope="module")
def releases(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Release URIs in a local model repository, published with ``timonel.package``."""
    from timonel.releases.package import package

    repo = tmp_path_factory.mktemp("repo")
    return {
        label: package(path, name="half", repo=str(repo), version=number).uri
        for number, (label, path) in enumerate(sorted(models.items()), start=1)
    }


def grpc_predict(
    ingress: str, isvc: dict[str, Any], revision: str | None, values: list[float], calls: int = 1
) -> list[float]:
    """Predict over gRPC through the ingress (``:authority`` the revision's host) with TF
    Serving's own stubs, ``calls`` times on one channel; the answers, one after the other."""
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = isvc["metadata"]["name"]
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(values, dtype=tf.float32))
    authority = [("grpc.default_authority", host_of(isvc, revision))]
    answers: list[float] = []
    with grpc.insecure_channel(ingress.removeprefix("http://"), options=authority) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for _ in range(calls):
            reply = stub.Predict(request, 30)
            answers += [float(v) for v in tf.make_ndarray(reply.outputs["y"]).tolist()]
    return answers


def test_release_lifecycle_on_timonel_serve(
    api: client.CustomObjectsApi,
    serving_controller: Controller,
    ingress: str,
    releases: dict[str, str],
) -> None:
    name = "served"
    r1, r2 = f"{name}-predictor-00001", f"{name}-predictor-00002"
    api.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, releases["v1"])
    )
    deployed = wait_for(api, name, settled, timeout=SERVE_TIMEOUT)
    assert traffic(deployed) == [(r1, 100, "")]
    assert predict(ingress, deployed, r1) == [2.5]
    assert grpc_predict(ingress, deployed, r1, [1.0, 2.0]) == [2.5, 3.0]

    update(api, name, canary_change(releases["v2"], 30))
    split = wait_for(api, name, ready_at(r2), timeout=SERVE_TIMEOUT)
    assert traffic(split) == [(r2, 30, ""), (r1, 70, "prev")]
    assert predict(ingress, split, r1) == [2.5]  # by the prev tag's host
    assert {predict(ingress, split)[0] for _ in range(40)} == {2.5, 3.5}
    # One gRPC channel: every call follows the split on its own, and each is counted.
    answers = Counter(grpc_predict(ingress, split, None, [1.0], calls=100))
    assert set(answers) == {2.5, 3.5} and answers[3.5] >= 10, answers
    metrics = httpx.get(f"{ingress}/metrics").text
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("kn_serving_invocation_duration_seconds_count")
        and f'kn_service_name="{name}-predictor"' in line
    )
    assert counted >= 100 + 40 + 1, counted

    promotion = update(api, name, lambda i: i["spec"]["predictor"].pop("canaryTrafficPercent"))
    promoted = wait_for(api, name, served(promotion))
    assert traffic(promoted) == [(r2, 100, "")]
    assert promoted["status"]["components"]["predictor"]["previousRolledoutRevision"] == r1
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_changed_release_fails_its_checksum_in_the_storage_initializer(
    api: client.CustomObjectsApi,
    serving_controller: Controller,
    models: dict[str, Path],
    tmp_path: Path,
) -> None:
    from timonel.releases.package import package

    release = package(models["v1"], name="half", repo=str(tmp_path / "repo"), version=7)
    (Path(release.uri) / "7" / "saved_model.pb").write_bytes(b"changed after publishing")
    name = "tampered"
    api.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, release.uri)
    )
    failed = wait_for(
        api, name, lambda i: condition(i, "Ready").get("status") == "False", timeout=SERVE_TIMEOUT
    )

    info = failed["status"]["modelStatus"]["lastFailureInfo"]
    assert info["reason"] == "ModelLoadFailed"
    assert "7/saved_model.pb of release" in info["message"]
    assert "the release was changed or damaged after publishing" in info["message"]
    assert failed["status"]["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_unloadable_model_reports_the_servers_last_words(
    api: client.CustomObjectsApi, serving_controller: Controller, tmp_path: Path
) -> None:
    version = tmp_path / "broken" / "1"
    version.mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"not a SavedModel")
    name = "unloadable"
    body = manifest(name, str(tmp_path / "broken"))
    # TF Serving retries a failed load 5 times a minute apart; the container args say "once".
    body["spec"]["predictor"]["model"]["args"] = ["--max_num_load_retries=0"]
    api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    failed = wait_for(
        api, name, lambda i: condition(i, "Ready").get("status") == "False", timeout=SERVE_TIMEOUT
    )

    info = failed["status"]["modelStatus"]["lastFailureInfo"]
    assert info["reason"] == "ModelLoadFailed"
    assert info["exitCode"] != 0
    assert "Failed to load SavedModel" in info["message"]
    assert condition(failed, "PredictorConfigurationReady")["reason"] == "RevisionFailed"
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_release_in_a_gcs_bucket(
    api: client.CustomObjectsApi,
    serving_controller: Controller,
    models: dict[str, Path],
    gcs_emulator: BucketEmulator,
    ingress: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from timonel.releases.package import package

    for key, value in gcs_emulator.env.items():
        monkeypatch.setenv(key, value)
    release = package(
        models["v2"],
        name="half",
        repo=gcs_emulator.fresh_uri(),
        version=1,
        storage_options=gcs_emulator.storage_options,
    )
    assert release.uri.startswith("gs://")
    name = "bucket"
    api.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, release.uri)
    )
    ready = wait_for(api, name, settled, timeout=SERVE_TIMEOUT)
    assert predict(ingress, ready, f"{name}-predictor-00001") == [3.5]
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
