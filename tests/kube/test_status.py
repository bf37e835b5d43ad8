"""ServiceStatus reads KServe's status shapes into one view."""

from __future__ import annotations

import pytest

from timonel.errors import SpecError
from timonel.kube.status import (
    Condition,
    TrafficTarget,
    deployment_mode,
    implementation,
    is_stopped,
    read_status,
)

from .isvcs import V1, V2, canary_70_30, isvc


def test_a_knative_canary_reads_as_a_70_30_split_with_tags() -> None:
    status = read_status(canary_70_30())
    assert status.ready and status.mode == "Knative"
    assert status.storage_uri == V2
    assert status.canary_percent == 30
    assert status.latest_rolledout_revision == "digits-predictor-00001"
    assert status.traffic == (
        TrafficTarget(
            "digits-predictor-00002",
            30,
            True,
            "latest",
            "http://latest-digits-predictor.ml.example.com",
        ),
        TrafficTarget(
            "digits-predictor-00001",
            70,
            False,
            "prev",
            "http://prev-digits-predictor.ml.example.com",
        ),
    )
    assert status.to_dict()["traffic"][1]["tag"] == "prev"


def test_a_standard_canary_is_weighted_only_once_ready() -> None:
    obj = isvc(
        mode="Standard",
        canary=[
            {"predictor": {"name": "canary-1", "model": {"storageUri": V2}}, "trafficPercent": 20}
        ],
    )
    obj["status"]["canaryStatuses"] = [{"name": "canary-1", "ready": False, "trafficPercent": 20}]
    assert [t.percent for t in read_status(obj).traffic] == [100, 0]
    obj["status"]["canaryStatuses"][0]["ready"] = True
    status = read_status(obj)
    assert status.mode == "Standard" and status.canary_percent == 20
    assert [(t.revision, t.percent) for t in status.traffic] == [
        ("digits-predictor", 80),
        ("digits-canary-1-predictor", 20),
    ]


def test_a_promoted_standard_predictor_is_the_canarys_deployment() -> None:
    obj = isvc(mode="Standard")
    obj["spec"]["predictor"]["name"] = "canary-1"
    (stable,) = read_status(obj).traffic
    assert (stable.revision, stable.percent, stable.tag) == (
        "digits-canary-1-predictor",
        100,
        "canary-1",
    )


def test_why_not_ready_lists_the_failing_conditions_and_the_model_failure() -> None:
    obj = isvc(ready=False)
    obj["status"]["modelStatus"] = {
        "transitionStatus": "BlockedByFailedLoad",
        "lastFailureInfo": {"reason": "ModelLoadFailed", "message": "no SavedModel in gs://x"},
    }
    status = read_status(obj)
    assert status.failure == "no SavedModel in gs://x"
    assert status.why_not_ready == (
        "PredictorReady=False; Ready=False (RevisionMissing: not yet); "
        "model: no SavedModel in gs://x"
    )
    assert str(Condition("Ready", "True")) == "Ready=True"


@pytest.mark.parametrize(
    ("annotation", "resolved", "mode"),
    [
        (None, None, "Knative"),
        ("Serverless", None, "Knative"),
        ("RawDeployment", None, "Standard"),
        ("Standard", None, "Standard"),
        (None, "Standard", "Standard"),
        ("Standard", "Knative", "Knative"),
    ],
)
def test_deployment_mode(annotation, resolved, mode) -> None:
    obj = isvc(mode=annotation)
    if resolved:
        obj["status"]["deploymentMode"] = resolved
    assert deployment_mode(obj) == mode


def test_a_predictor_without_a_model_server_is_refused() -> None:
    assert implementation({"tensorflow": {"storageUri": V1}}) == "tensorflow"
    with pytest.raises(SpecError) as caught:
        implementation({"containers": []})
    assert str(caught.value) == (
        "spec.predictor has neither `model` nor `tensorflow`: Timonel manages InferenceServices "
        "that serve a model from a storage URI; render one with `timonel render`"
    )


@pytest.mark.parametrize(
    ("annotations", "stopped"),
    [
        ({}, False),
        ({"serving.kserve.io/stop": "true"}, True),
        ({"serving.kserve.io/stop": "True"}, True),
        ({"serving.kserve.io/stop": "false"}, False),
    ],
)
def test_is_stopped(annotations: dict[str, str], stopped: bool) -> None:
    assert is_stopped(isvc(annotations=annotations)) is stopped
