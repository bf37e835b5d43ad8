"""KServe's Standard mode and the Deployment controller as pure functions, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from timonel.local.runtimes import NoRuntime
from timonel.local.standard import (
    PodState,
    deployment_manifest,
    deployment_status,
    isvc_status,
    pod_manifest,
    predictors,
    replica_set_manifest,
    rollout,
    service_manifest,
)

NOW = "2026-12-02T15:00:00Z"
V1, V2 = "gs://models/half/v1", "gs://models/half/v2"


def isvc(
    *,
    minimum: int | None = None,
    canary: list[dict[str, Any]] | None = None,
    status: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    **predictor: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "half",
            "namespace": "default",
            "uid": "u-1",
            "generation": 7,
            "labels": {"team": "a"},
            "annotations": {"serving.kserve.io/deploymentMode": "Standard", **(annotations or {})},
        },
        "spec": {
            "predictor": {
                "model": {"modelFormat": {"name": "tensorflow"}, "storageUri": V1},
                **predictor,
            }
        },
    }
    if minimum is not None:
        body["spec"]["predictor"]["minReplicas"] = minimum
    if canary is not None:
        body["spec"]["canary"] = canary
    if status is not None:
        body["status"] = status
    return body


def entry(percent: int, name: str = "canary-1", **predictor: Any) -> dict[str, Any]:
    model = {"name": "kserve-container", "storageUri": V2}
    return {"predictor": {"name": name, "model": model, **predictor}, "trafficPercent": percent}


def ready_canary(name: str = "canary-1") -> dict[str, Any]:
    return {"canaryStatuses": [{"name": name, "ready": True, "trafficPercent": 20}]}


# --- predictors and their replicas (components/predictor.go) ---------------------------------


@pytest.mark.parametrize(
    ("body", "replicas"),
    [
        (isvc(), [("half-predictor", 1)]),
        (isvc(minimum=0), [("half-predictor", 1)]),  # the HPA's floor is 1
        (
            isvc(minimum=0, annotations={"serving.kserve.io/autoscalerClass": "none"}),
            [("half-predictor", 0)],
        ),
        (isvc(minimum=3, maxReplicas=5), [("half-predictor", 3)]),
        # the canary: ceil(stable min x percent / 100), or its own minReplicas
        (
            isvc(minimum=4, canary=[entry(20)]),
            [("half-predictor", 4), ("half-canary-1-predictor", 1)],
        ),
        (
            isvc(minimum=4, canary=[entry(60)]),
            [("half-predictor", 4), ("half-canary-1-predictor", 3)],
        ),
        (isvc(canary=[entry(0)]), [("half-predictor", 1), ("half-canary-1-predictor", 0)]),
        (
            isvc(minimum=4, canary=[entry(20, minReplicas=2)]),
            [("half-predictor", 4), ("half-canary-1-predictor", 2)],
        ),
        # a ready canary's replicas come off the stable minimum, never below 1
        (
            isvc(minimum=4, canary=[entry(60)], status=ready_canary()),
            [("half-predictor", 1), ("half-canary-1-predictor", 3)],
        ),
        (
            isvc(minimum=6, canary=[entry(60)], status=ready_canary()),
            [("half-predictor", 2), ("half-canary-1-predictor", 4)],
        ),
        # without a stable minReplicas KServe does not reduce it
        (
            isvc(canary=[entry(20)], status=ready_canary()),
            [("half-predictor", 1), ("half-canary-1-predictor", 1)],
        ),
        # a promoted canary names the stable predictor
        (isvc(name="canary-1"), [("half-canary-1-predictor", 1)]),
    ],
)
def test_predictors_and_replicas_as_kserve_counts_them(
    body: dict[str, Any], replicas: list[tuple[str, int]]
) -> None:
    assert [(p.name, p.replicas) for p in predictors(body)] == replicas


def test_a_canary_inherits_the_stable_spec_without_its_autoscaling() -> None:
    body = isvc(minimum=2, maxReplicas=4, scaleMetric="cpu", canary=[entry(20)])
    body["spec"]["predictor"]["model"]["args"] = ["--flag"]
    _, canary = predictors(body)
    assert canary.canary == "canary-1" and canary.traffic_percent == 20
    assert canary.spec["model"] == {
        "modelFormat": {"name": "tensorflow"},
        "storageUri": V2,
        "args": ["--flag"],
        "name": "kserve-container",
    }
    assert "maxReplicas" not in canary.spec and "scaleMetric" not in canary.spec
    assert canary.spec["minReplicas"] == 1


# --- the objects ----------------------------------------------------------------------------


def test_the_deployment_and_service_carry_kserves_names_labels_and_selector() -> None:
    stable, canary = predictors(isvc(canary=[entry(20)]))
    deployment = deployment_manifest(isvc(canary=[entry(20)]), canary)
    assert deployment["metadata"]["name"] == "half-canary-1-predictor"
    assert deployment["metadata"]["labels"] == {
        "team": "a",
        "serving.kserve.io/inferenceservice": "half",
        "component": "predictor",
    }
    assert deployment["metadata"]["ownerReferences"][0]["kind"] == "InferenceService"
    assert deployment["spec"]["selector"] == {
        "matchLabels": {"app": "isvc.half-canary-1-predictor"}
    }
    template = deployment["spec"]["template"]
    assert template["metadata"]["labels"]["app"] == "isvc.half-canary-1-predictor"
    assert template["spec"]["initContainers"][0]["args"] == [V2, "/mnt/models"]
    assert template["spec"]["containers"][0]["name"] == "kserve-container"
    service = service_manifest(isvc(), stable)
    assert service["metadata"]["name"] == "half-predictor"
    assert service["spec"]["selector"] == {"app": "isvc.half-predictor"}
    assert service["spec"]["ports"] == [
        {
            "name": "h2c",
            "port": 80,
            "targetPort": 9000,
            "protocol": "TCP",
            "appProtocol": "kubernetes.io/h2c",
        }
    ]


def deployment(body: dict[str, Any], generation: int = 1) -> dict[str, Any]:
    made = deployment_manifest(body, predictors(body)[0])
    made["metadata"].update(uid="d-1", generation=generation)
    return made


def test_a_replicaset_per_pod_template_and_pods_named_after_it() -> None:
    first = replica_set_manifest(deployment(isvc()), 1)
    second = replica_set_manifest(deployment(isvc(model={"storageUri": V2})), 1)
    digest = first["metadata"]["labels"]["pod-template-hash"]
    assert first["metadata"]["name"] == f"half-predictor-{digest}"
    assert second["metadata"]["name"] != first["metadata"]["name"]
    assert first["spec"]["selector"]["matchLabels"]["pod-template-hash"] == digest
    pod = pod_manifest(first, 1)
    assert pod["metadata"]["generateName"] == f"half-predictor-{digest}-"
    assert pod["metadata"]["labels"]["app"] == "isvc.half-predictor"
    assert pod["metadata"]["annotations"]["timonel.dev/replica"] == "1"
    assert pod["metadata"]["ownerReferences"][0]["name"] == first["metadata"]["name"]


# --- the Deployment controller --------------------------------------------------------------


def test_a_rolling_update_keeps_old_pods_until_new_ones_are_ready() -> None:
    new = deployment(isvc(minimum=2, model={"storageUri": V2}), generation=2)
    current = replica_set_manifest(new, 2)["metadata"]["name"]
    old = "half-predictor-old"
    pods = [PodState("a", old, True), PodState("b", old, True), PodState("c", current, True)]
    plan = rollout(new, pods)
    assert plan.replica_set == current
    assert plan.replicas == {current: 2, old: 1}
    pods.append(PodState("d", current, True))
    assert rollout(new, pods).replicas == {current: 2, old: 0}


def conditions(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_deployment_status_as_the_deployment_controller_writes_it() -> None:
    made = deployment(isvc(minimum=2), generation=3)
    rs = replica_set_manifest(made, 2)["metadata"]["name"]
    starting = deployment_status(
        made, [PodState("a", rs, False), PodState("b", rs, False)], now=NOW
    )
    assert starting["observedGeneration"] == 3
    assert starting["replicas"] == 2 and starting["updatedReplicas"] == 2
    assert "readyReplicas" not in starting
    assert conditions(starting) == {
        "Available": ("False", "MinimumReplicasUnavailable"),
        "Progressing": ("True", "ReplicaSetUpdated"),
    }
    done = deployment_status(made, [PodState("a", rs, True), PodState("b", rs, True)], now=NOW)
    assert done["readyReplicas"] == done["availableReplicas"] == 2
    assert conditions(done) == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }


# --- KServe's status ------------------------------------------------------------------------


def with_status(made: dict[str, Any], ready: int, generation: int = 1) -> dict[str, Any]:
    rs = replica_set_manifest(made, 1)["metadata"]["name"]
    pods = [PodState(str(i), rs, i < ready) for i in range(int(made["spec"]["replicas"]))]
    return {
        **made,
        "status": {**deployment_status(made, pods, now=NOW), "observedGeneration": generation},
    }


def test_a_ready_deployment_makes_the_service_ready_with_kserves_urls() -> None:
    body = isvc()
    status = isvc_status(body, {"half-predictor": with_status(deployment(body), 1, 2)}, [], now=NOW)
    assert conditions_of(status) == {
        "IngressReady": "True",
        "PredictorReady": "True",
        "Ready": "True",
    }
    assert status["deploymentMode"] == "Standard"
    assert status["observedGeneration"] == 2  # the Deployment's, not the InferenceService's 7
    assert status["url"] == "http://half-default.example.com"
    assert status["address"] == {"url": "http://half-predictor.default.svc.cluster.local"}
    assert status["components"]["predictor"]["url"] == "http://half-predictor-default.example.com"


def conditions_of(status: dict[str, Any]) -> dict[str, str]:
    return {c["type"]: c["status"] for c in status["conditions"]}


def test_an_unavailable_deployment_leaves_the_ingress_uncreated() -> None:
    body = isvc()
    status = isvc_status(body, {"half-predictor": with_status(deployment(body), 0)}, [], now=NOW)
    predictor = next(c for c in status["conditions"] if c["type"] == "PredictorReady")
    assert predictor["status"] == "False"
    assert predictor["reason"] == "MinimumReplicasUnavailable"
    ingress = next(c for c in status["conditions"] if c["type"] == "IngressReady")
    assert (ingress["status"], ingress["reason"]) == ("False", "Predictor ingress not created")
    assert "url" not in status
    assert status["modelStatus"]["states"]["targetModelState"] == "Pending"


def test_canary_statuses_say_which_canaries_have_an_available_replica() -> None:
    body = isvc(canary=[entry(20), entry(10, name="canary-2")])
    stable, first, second = predictors(body)
    found = {
        stable.name: with_status(deployment(body), 1),
        first.name: with_status(deployment_manifest(body, first), 1),
        second.name: with_status(deployment_manifest(body, second), 0),
    }
    status = isvc_status(body, found, [], now=NOW)
    assert status["canaryStatuses"] == [
        {"name": "canary-1", "ready": True, "trafficPercent": 20},
        {"name": "canary-2", "ready": False, "trafficPercent": 10},
    ]
    canary = next(c for c in status["conditions"] if c["type"] == "CanaryPredictorReady")
    assert (canary["status"], canary["reason"], canary["severity"]) == (
        "False",
        "CanariesNotReady",
        "Info",
    )
    assert conditions_of(status)["Ready"] == "True"  # canaries do not decide Ready
    rolled_back = isvc(status=status)
    again = isvc_status(rolled_back, {stable.name: found[stable.name]}, [], now=NOW)
    assert "canaryStatuses" not in again
    assert "CanaryPredictorReady" not in conditions_of(again)


def test_what_kserve_cannot_reconcile_writes_no_workload_status() -> None:
    bad = isvc(model={"modelFormat": {"name": "tensorflow"}, "storageUri": "ftp://x/y"})
    status = isvc_status(bad, {}, [], now=NOW)
    assert status["modelStatus"]["transitionStatus"] == "InvalidSpec"
    assert "StorageURI not supported" in status["modelStatus"]["lastFailureInfo"]["message"]
    missing = NoRuntime(
        "NoSupportingRuntime", "No runtime found to support specified framework/version"
    )
    status = isvc_status(isvc(), {}, [], now=NOW, runtime=missing)
    assert status["modelStatus"]["lastFailureInfo"] == {
        "reason": "NoSupportingRuntime",
        "message": "No runtime found to support specified framework/version",
    }
