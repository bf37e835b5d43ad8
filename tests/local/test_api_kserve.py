"""KServe's own Python SDK (KServeClient) against the local API server and controller."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from .standin_server import write_model


@pytest.fixture
def kserve_client(local_kubeconfig: Path) -> Iterator[object]:
    """A KServeClient on the generated kubeconfig; it sets the kubernetes client's global default
    configuration, which is put back afterwards."""
    from kserve import KServeClient

    saved = client.Configuration._default
    try:
        yield KServeClient(config_file=str(local_kubeconfig))
    finally:
        client.Configuration.set_default(saved)


def isvc_model(name: str, storage_uri: str) -> object:
    """The model object KServeClient.create needs (it reads attributes, so a dict fails)."""
    from kserve import (
        V1beta1InferenceService,
        V1beta1InferenceServiceSpec,
        V1beta1ModelFormat,
        V1beta1ModelSpec,
        V1beta1PredictorSpec,
        constants,
    )

    return V1beta1InferenceService(
        api_version=constants.KSERVE_V1BETA1,
        kind=constants.KSERVE_KIND_INFERENCESERVICE,
        metadata=client.V1ObjectMeta(name=name, namespace="default"),
        spec=V1beta1InferenceServiceSpec(
            predictor=V1beta1PredictorSpec(
                min_replicas=1,
                model=V1beta1ModelSpec(
                    model_format=V1beta1ModelFormat(name="tensorflow"), storage_uri=storage_uri
                ),
            )
        ),
    )


@pytest.mark.slow
@pytest.mark.usefixtures("local_controller")
def test_kserve_client_creates_an_isvc_and_waits_until_it_is_ready(
    kserve_client: object, tmp_path: Path
) -> None:
    write_model(tmp_path / "half", version=1)
    created = kserve_client.create(isvc_model("half", str(tmp_path / "half")))  # type: ignore[attr-defined]
    assert created["metadata"]["generation"] == 1
    kserve_client.wait_isvc_ready(  # type: ignore[attr-defined]
        "half", namespace="default", timeout_seconds=60, polling_interval=1
    )
    assert kserve_client.is_isvc_ready("half", namespace="default", expected_generation=1)  # type: ignore[attr-defined]
    fetched = kserve_client.get("half", namespace="default")  # type: ignore[attr-defined]
    assert fetched["status"]["url"] == "http://half.default.example.com"
    kserve_client.delete("half", namespace="default")  # type: ignore[attr-defined]


def test_kserve_client_sees_the_webhook_denial_as_on_a_cluster(kserve_client: object) -> None:
    isvc = isvc_model("half", "gs://models/half/v1")
    isvc.spec.predictor.max_replicas = 0  # type: ignore[attr-defined]
    isvc.spec.predictor.min_replicas = -1  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError) as exc:
        kserve_client.create(isvc)  # type: ignore[attr-defined]
    text = str(exc.value)
    assert "(403)" in text
    assert (
        'admission webhook \\"inferenceservice.kserve-webhook-server.validator\\" denied the '
        "request: " in text
    )
    assert "'MinReplicas' cannot be less than 0" in text


@pytest.mark.slow
@pytest.mark.usefixtures("local_controller")
def test_kserve_client_get_with_watch_prints_until_ready(
    kserve_client: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_model(tmp_path / "watched", version=1)
    kserve_client.create(isvc_model("watched", str(tmp_path / "watched")))  # type: ignore[attr-defined]
    # KServe's isvc_watch streams the InferenceService list and returns on Ready True.
    kserve_client.get("watched", namespace="default", watch=True, timeout_seconds=60)  # type: ignore[attr-defined]
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[-1] == ["watched", "True", "0", "100", "http://watched.default.example.com"]
    kserve_client.delete("watched", namespace="default")  # type: ignore[attr-defined]
