"""Table tests for the pure Knative-mode reconcile: spec + revisions + processes → status."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from timonel.kube.status import revision_metadata
from timonel.local.conditions import ConditionSet
from timonel.local.reconcile import (
    Failure,
    Outcome,
    Phase,
    Revision,
    RevisionObservation,
    deployment_mode,
    gpu_limits,
    reconcile,
    revision_template,
    spec_error,
    stopped_status,
)

NOW = "2026-01-02T03:04:05Z"
V1 = "gs://models/half/v1"
V2 = "gs://models/half/v2"
R1 = "half-predictor-00001"
R2 = "half-predictor-00002"

READY = RevisionObservation(
    phase=Phase.READY,
    has_been_ready=True,
    rest="127.0.0.1:8501",
    grpc="127.0.0.1:8500",
    ready_copies=1,
)
STARTING = RevisionObservation(phase=Phase.STARTING, rest="127.0.0.1:8601", grpc="127.0.0.1:8600")
STORAGE_FAILED = RevisionObservation(
    phase=Phase.FAILED,
    last_failure=Failure("no release at gs://models/half/v9", exit_code=1, in_initializer=True),
)
SERVER_FAILED = RevisionObservation(
    phase=Phase.FAILED,
    last_failure=Failure("Failed to load model half: corrupt saved_model.pb", exit_code=1),
    restarts=2,
)


def isvc(
    uri: str = V1,
    *,
    generation: int = 1,
    percent: int | None = None,
    annotations: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
    resources: dict[str, Any] | None = None,
) -> dict[str, Any]:
    model: dict[str, Any] = {"modelFormat": {"name": "tensorflow"}, "storageUri": uri}
    if resources:
        model["resources"] = resources
    predictor: dict[str, Any] = {"model": model}
    if percent is not None:
        predictor["canaryTrafficPercent"] = percent
    body: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "half",
            "namespace": "models",
            "generation": generation,
            "annotations": {"serving.kserve.io/deploymentMode": "Knative", **(annotations or {})},
        },
        "spec": {"predictor": predictor},
    }
    if status is not None:
        body["status"] = copy.deepcopy(status)
    return body


def rev(number: int, uri: str) -> Revision:
    made = isvc(uri)
    template = revision_template(made["spec"]["predictor"])
    return Revision(f"half-predictor-{number:05d}", number, template, revision_metadata(made))


def conditions(outcome: Outcome) -> dict[str, tuple[str, str, str]]:
    return {
        c["type"]: (c["status"], c.get("reason", ""), c.get("message", ""))
        for c in outcome.status["conditions"]
    }


def predictor(outcome: Outcome) -> dict[str, Any]:
    return outcome.status["components"]["predictor"]


def service_of(outcome: Outcome) -> dict[str, Any]:
    """The Knative Service as the controller wrote it after ``outcome``: its generation and
    traffic block are what the next reconcile continues from."""
    assert outcome.service_status is not None
    return {
        "metadata": {"generation": outcome.service_status["observedGeneration"]},
        "spec": {"traffic": list(outcome.route)},
    }


def deploy_v1() -> Outcome:
    """v1 created, then ready: the status every later step starts from."""
    first = reconcile(isvc(), [], {}, now=NOW)
    return reconcile(
        isvc(status=first.status),
        first.revisions,
        {R1: READY},
        now=NOW,
        service=service_of(first),
    )


def canary_v2(percent: int, observed: RevisionObservation, **kwargs: Any) -> Outcome:
    base = deploy_v1()
    return reconcile(
        isvc(V2, generation=2, percent=percent, status=base.status, **kwargs),
        base.revisions,
        {R1: READY, R2: observed},
        now=NOW,
        service=service_of(base),
    )


def test_first_revision_deploying_waits_for_a_ready_revision() -> None:
    outcome = reconcile(isvc(), [], {}, now=NOW)

    assert outcome.revisions == (rev(1, V1),)
    assert outcome.running == {R1}
    waiting = 'Configuration "half-predictor" is waiting for a Revision to become ready.'
    assert conditions(outcome) == {
        "IngressReady": ("Unknown", "Predictor ingress not created", ""),
        "LatestDeploymentReady": ("Unknown", "PredictorConfigurationReady not ready", ""),
        "PredictorConfigurationReady": ("Unknown", "", ""),
        "PredictorReady": ("Unknown", "RevisionMissing", waiting),
        "PredictorRouteReady": ("Unknown", "RevisionMissing", waiting),
        "Ready": ("Unknown", "Predictor ingress not created", ""),
        "RoutesReady": ("Unknown", "PredictorRouteReady not ready", ""),
    }
    assert predictor(outcome) == {"latestCreatedRevision": R1}
    assert outcome.status["modelStatus"] == {
        "copies": {"failedCopies": 0},
        "states": {"activeModelState": "", "targetModelState": "Pending"},
        "transitionStatus": "InProgress",
    }
    assert "url" not in outcome.status


def test_ready_revision_gives_kserve_status_shape() -> None:
    outcome = deploy_v1()

    assert outcome.status == {
        "address": {"url": "http://half.models.svc.cluster.local"},
        "components": {
            "predictor": {
                "address": {"url": "http://half-predictor.models.svc.cluster.local"},
                "latestCreatedRevision": R1,
                "latestReadyRevision": R1,
                "latestRolledoutRevision": R1,
                "traffic": [{"latestRevision": True, "percent": 100, "revisionName": R1}],
                "url": "http://half-predictor.models.example.com",
            }
        },
        "conditions": [
            {"lastTransitionTime": NOW, "status": "True", "type": "IngressReady"},
            {
                "lastTransitionTime": NOW,
                "severity": "Info",
                "status": "True",
                "type": "LatestDeploymentReady",
            },
            {
                "lastTransitionTime": NOW,
                "severity": "Info",
                "status": "True",
                "type": "PredictorConfigurationReady",
            },
            {"lastTransitionTime": NOW, "status": "True", "type": "PredictorReady"},
            {
                "lastTransitionTime": NOW,
                "severity": "Info",
                "status": "True",
                "type": "PredictorRouteReady",
            },
            {"lastTransitionTime": NOW, "status": "True", "type": "Ready"},
            {
                "lastTransitionTime": NOW,
                "severity": "Info",
                "status": "True",
                "type": "RoutesReady",
            },
        ],
        "deploymentMode": "Knative",
        "modelStatus": {
            "copies": {"failedCopies": 0, "totalCopies": 1},
            "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
            "transitionStatus": "UpToDate",
        },
        "observedGeneration": 1,
        "url": "http://half.models.example.com",
    }
    assert outcome.running == {R1}


def test_same_spec_again_changes_nothing() -> None:
    ready = deploy_v1()
    later = "2026-01-02T04:00:00Z"
    again = reconcile(isvc(status=ready.status), ready.revisions, {R1: READY}, now=later)
    assert again.status == ready.status
    assert again.revisions == ready.revisions


def test_canary_while_new_revision_deploys_keeps_all_traffic_on_v1() -> None:
    outcome = canary_v2(30, STARTING)

    assert outcome.revisions == (rev(1, V1), rev(2, V2))
    assert outcome.running == {R1, R2}
    component = predictor(outcome)
    assert component["latestCreatedRevision"] == R2
    assert component["latestReadyRevision"] == R1
    assert component["latestRolledoutRevision"] == R1
    assert component["traffic"] == [
        {"latestRevision": True, "percent": 30, "revisionName": R1},
        {
            "tag": "prev",
            "revisionName": R1,
            "latestRevision": False,
            "percent": 70,
            "url": "http://prev-half-predictor.models.example.com",
        },
    ]
    state = conditions(outcome)
    assert state["PredictorConfigurationReady"][0] == "Unknown"
    assert state["Ready"][0] == "Unknown"
    assert outcome.status["observedGeneration"] == 2
    assert outcome.status["modelStatus"]["states"] == {
        "activeModelState": "Loaded",
        "targetModelState": "Pending",
    }


def test_canary_ready_splits_traffic_70_30_with_prev_tag() -> None:
    outcome = canary_v2(30, READY)

    assert predictor(outcome)["traffic"] == [
        {"latestRevision": True, "percent": 30, "revisionName": R2},
        {
            "tag": "prev",
            "revisionName": R1,
            "latestRevision": False,
            "percent": 70,
            "url": "http://prev-half-predictor.models.example.com",
        },
    ]
    assert predictor(outcome)["latestRolledoutRevision"] == R1
    assert "previousRolledoutRevision" not in predictor(outcome)
    assert conditions(outcome)["Ready"] == ("True", "", "")
    assert outcome.status["modelStatus"]["transitionStatus"] == "UpToDate"


def test_tag_routing_annotation_adds_latest_tag_and_url() -> None:
    outcome = canary_v2(30, READY, annotations={"serving.kserve.io/enable-tag-routing": "true"})

    assert predictor(outcome)["traffic"][0] == {
        "tag": "latest",
        "revisionName": R2,
        "latestRevision": True,
        "percent": 30,
        "url": "http://latest-half-predictor.models.example.com",
    }


def test_first_deploy_with_a_percent_splits_over_its_one_revision() -> None:
    """KServe ignores the percent until a revision is rolled out, then splits over that one."""
    first = reconcile(isvc(percent=10), [], {R1: READY}, now=NOW)
    assert [(t["revisionName"], t["percent"]) for t in predictor(first)["traffic"]] == [
        (R1, 10),
        (R1, 90),
    ]
    assert predictor(first)["latestRolledoutRevision"] == R1


@pytest.mark.parametrize("promotion", [None, 100])
def test_promote_moves_rolled_out_revisions(promotion: int | None) -> None:
    canary = canary_v2(30, READY)
    promoted = reconcile(
        isvc(V2, generation=3, percent=promotion, status=canary.status),
        canary.revisions,
        {R1: READY, R2: READY},
        now=NOW,
    )

    component = predictor(promoted)
    assert component["traffic"] == [{"latestRevision": True, "percent": 100, "revisionName": R2}]
    assert component["latestRolledoutRevision"] == R2
    assert component["previousRolledoutRevision"] == R1
    assert promoted.running == {R2}
    assert promoted.revisions == canary.revisions


def test_rollback_during_canary_sends_everything_to_prev() -> None:
    canary = canary_v2(30, READY)
    rolled_back = reconcile(
        isvc(V2, generation=3, percent=0, status=canary.status),
        canary.revisions,
        {R1: READY, R2: READY},
        now=NOW,
    )

    assert predictor(rolled_back)["traffic"] == [
        {"latestRevision": True, "percent": 0, "revisionName": R2},
        {
            "tag": "prev",
            "revisionName": R1,
            "latestRevision": False,
            "percent": 100,
            "url": "http://prev-half-predictor.models.example.com",
        },
    ]
    assert predictor(rolled_back)["latestRolledoutRevision"] == R1
    assert rolled_back.running == {R1, R2}


def test_percent_after_promotion_falls_back_to_previous_rolled_out_revision() -> None:
    canary = canary_v2(30, READY)
    promoted = reconcile(
        isvc(V2, generation=3, status=canary.status),
        canary.revisions,
        {R1: READY, R2: READY},
        now=NOW,
    )
    stopped_v1 = RevisionObservation(phase=Phase.STOPPED, has_been_ready=True)
    back = reconcile(
        isvc(V2, generation=4, percent=0, status=promoted.status),
        promoted.revisions,
        {R1: stopped_v1, R2: READY},
        now=NOW,
    )

    component = predictor(back)
    assert component["latestRolledoutRevision"] == R1
    assert component["traffic"][1]["revisionName"] == R1
    assert component["traffic"][1]["percent"] == 100
    assert back.running == {R1, R2}


def test_new_revision_that_fails_leaves_traffic_on_v1_and_ready_false() -> None:
    outcome = canary_v2(30, SERVER_FAILED)

    failed = (
        f'Revision "{R2}" failed with message: Container failed with: '
        "Failed to load model half: corrupt saved_model.pb."
    )
    state = conditions(outcome)
    assert state["PredictorConfigurationReady"] == ("False", "RevisionFailed", failed)
    assert state["PredictorReady"] == ("False", "RevisionFailed", failed)
    assert state["PredictorRouteReady"] == ("True", "", "")
    assert state["IngressReady"] == ("True", "", "")
    assert state["Ready"][0] == "False"
    assert state["LatestDeploymentReady"] == (
        "False",
        "PredictorConfigurationReady not ready",
        "",
    )
    assert [t["revisionName"] for t in predictor(outcome)["traffic"]] == [R1, R1]
    assert outcome.status["modelStatus"] == {
        "copies": {"failedCopies": 0},
        "lastFailureInfo": {
            "exitCode": 1,
            "message": "Failed to load model half: corrupt saved_model.pb",
            "reason": "ModelLoadFailed",
        },
        "states": {"activeModelState": "Loaded", "targetModelState": "FailedToLoad"},
        "transitionStatus": "BlockedByFailedLoad",
    }
    assert outcome.running == {R1, R2}


def test_first_deploy_with_failing_storage_reports_model_load_failed() -> None:
    first = reconcile(isvc("gs://models/half/v9"), [], {R1: STORAGE_FAILED}, now=NOW)

    state = conditions(first)
    no_ready = 'Configuration "half-predictor" does not have any ready Revision.'
    assert state["PredictorRouteReady"] == ("False", "RevisionMissing", no_ready)
    assert state["PredictorReady"] == ("False", "RevisionMissing", no_ready)
    assert state["Ready"][0] == "False"
    assert first.status["modelStatus"] == {
        "copies": {"failedCopies": 0},
        "lastFailureInfo": {
            "exitCode": 1,
            "message": "no release at gs://models/half/v9",
            "reason": "ModelLoadFailed",
        },
        "states": {"activeModelState": "", "targetModelState": "FailedToLoad"},
        "transitionStatus": "BlockedByFailedLoad",
    }
    assert "url" not in first.status


@pytest.mark.parametrize(
    ("observation", "target", "transition"),
    [
        (RevisionObservation(phase=Phase.INITIALIZING), "Loading", "InProgress"),
        (STARTING, "Pending", "InProgress"),
        (RevisionObservation(), "Pending", "InProgress"),
    ],
)
def test_model_state_follows_the_latest_revision(
    observation: RevisionObservation, target: str, transition: str
) -> None:
    outcome = reconcile(isvc(), [], {R1: observation}, now=NOW)
    assert outcome.status["modelStatus"]["states"]["targetModelState"] == target
    assert outcome.status["modelStatus"]["transitionStatus"] == transition


def test_unsupported_storage_scheme_is_reported_and_keeps_v1_serving() -> None:
    base = deploy_v1()
    outcome = reconcile(
        isvc("ftp://models/half/v2", generation=2, status=base.status),
        base.revisions,
        {R1: READY},
        now=NOW,
        service=service_of(base),
    )

    assert outcome.revisions == base.revisions
    # KServe stops before the Knative Service: it and the observedGeneration copied from it stay.
    assert outcome.service_status is None
    assert outcome.status["observedGeneration"] == 1
    status, reason, message = conditions(outcome)["PredictorReady"]
    assert (status, reason) == ("False", "InternalError")
    assert message.startswith("fails to reconcile component: StorageURI not supported: storageUri")
    assert message.endswith("StorageUri [ftp://models/half/v2] is not supported")
    assert outcome.status["modelStatus"]["transitionStatus"] == "InvalidSpec"
    assert outcome.status["modelStatus"]["lastFailureInfo"]["reason"] == "InvalidPredictorSpec"
    assert predictor(outcome)["traffic"] == predictor(base)["traffic"]
    assert outcome.running == {R1}


def test_gpu_request_is_noted_as_running_on_the_cpu() -> None:
    gpu = {"limits": {"nvidia.com/gpu": "1", "cpu": "2"}}
    outcome = reconcile(isvc(resources=gpu), [], {R1: READY}, now=NOW)

    note = next(c for c in outcome.status["conditions"] if c["type"] == "LocalCPUFallback")
    assert note["status"] == "True"
    assert note["severity"] == "Info"
    assert note["reason"] == "GPURequestedOnCPU"
    assert "nvidia.com/gpu: 1" in note["message"]
    assert "runs TF Serving on the CPU" in note["message"]
    assert conditions(outcome)["Ready"] == ("True", "", "")

    cpu_again = reconcile(isvc(generation=2, status=outcome.status), outcome.revisions, {}, now=NOW)
    assert "LocalCPUFallback" not in conditions(cpu_again)


@pytest.mark.parametrize(
    ("annotations", "mode"),
    [
        ({"serving.kserve.io/deploymentMode": "Knative"}, "Knative"),
        ({"serving.kserve.io/deploymentMode": "Serverless"}, "Knative"),
        ({"serving.kserve.io/deploymentMode": "Standard"}, "Standard"),
        ({"serving.kserve.io/deploymentMode": "RawDeployment"}, "Standard"),
        ({"serving.kserve.io/deploymentMode": "Bogus"}, "Knative"),
        ({}, "Knative"),
    ],
)
def test_deployment_mode(annotations: dict[str, str], mode: str) -> None:
    assert deployment_mode({"metadata": {"annotations": annotations}}) == mode


@pytest.mark.parametrize(
    ("predictor_spec", "problem"),
    [
        ({"model": {"storageUri": "gs://b/m/v1"}}, None),
        ({"model": {"storageUri": "/tmp/models/m"}}, None),
        ({"model": {"storageUri": "file:///tmp/m"}, "canaryTrafficPercent": 100}, None),
        ({"model": {"storageUri": "ftp://b/m"}}, "StorageUri [ftp://b/m] is not supported"),
        ({"model": {"storageUri": "gs://b/m"}, "canaryTrafficPercent": 120}, "120 <= 100"),
    ],
)
def test_spec_error(predictor_spec: dict[str, Any], problem: str | None) -> None:
    found = spec_error(predictor_spec)
    assert (found is None) if problem is None else (problem in str(found))


def test_gpu_limits_reads_model_tensorflow_and_containers() -> None:
    spec = {
        "tensorflow": {"resources": {"limits": {"nvidia.com/gpu": 2}}},
        "containers": [{"resources": {"limits": {"nvidia.com/mig-1g.5gb": 1}}}],
    }
    assert gpu_limits(spec) == {"nvidia.com/gpu": "2", "nvidia.com/mig-1g.5gb": "1"}
    assert gpu_limits({"model": {"resources": {"requests": {"nvidia.com/gpu": 1}}}}) == {}


def test_condition_set_follows_knative_rules() -> None:
    managed = ConditionSet("Ready", ("A", "B")).manage([], NOW)
    managed.initialize()
    managed.mark_true("A")
    assert managed.status_of("Ready") == "Unknown"
    managed.mark_false("B", "Broken", "b is broken")
    assert managed.get("Ready") == {
        "type": "Ready",
        "status": "False",
        "reason": "Broken",
        "message": "b is broken",
        "lastTransitionTime": NOW,
    }
    managed.mark_unknown("A", "Waiting")
    assert managed.get("Ready")["reason"] == "Broken"  # False trumps Unknown
    managed.mark_true("B")
    assert managed.status_of("Ready") == "False"  # True never lifts the happy condition alone
    managed.mark_true("A")
    assert managed.status_of("Ready") == "True"
    managed.mark_unknown("Other", "Info only")
    assert managed.get("Other")["severity"] == "Info"
    assert managed.status_of("Ready") == "True"


def test_a_stopped_isvc_keeps_only_its_mode_and_says_stopped() -> None:
    served = reconcile(isvc(), [rev(1, V1)], {R1: READY}, now=NOW)
    stop = {"serving.kserve.io/stop": "true"}
    status = stopped_status(isvc(annotations=stop, generation=2, status=served.status), now=NOW)

    assert status == {
        "deploymentMode": "Knative",
        "conditions": [
            {
                "type": "IngressReady",
                "status": "False",
                "reason": "Stopped",
                "lastTransitionTime": NOW,
            },
            {"type": "PredictorReady", "status": "False", "lastTransitionTime": NOW},
            {"type": "Ready", "status": "False", "reason": "Stopped", "lastTransitionTime": NOW},
            {"type": "Stopped", "status": "True", "severity": "Info", "lastTransitionTime": NOW},
        ],
    }
    later = stopped_status(isvc(annotations=stop, generation=3, status=status), now="later")
    assert later == status

    resumed = reconcile(isvc(generation=4, status=status), [], {}, now=NOW).status
    assert {c["type"]: c["status"] for c in resumed["conditions"]}["Stopped"] == "False"


@pytest.mark.parametrize(
    ("annotations", "revisions"),
    [
        ({"team": "vision"}, [R1, R2]),
        ({"kubectl.kubernetes.io/last-applied-configuration": "{}"}, [R1]),
        ({"autoscaling.knative.dev/min-scale": "3"}, [R1]),
    ],
    ids=["passed on: a new revision", "last-applied is not passed on", "min-scale is dropped"],
)
def test_an_annotation_makes_a_revision_only_when_kserve_passes_it_on(
    annotations: dict[str, str], revisions: list[str]
) -> None:
    ready = deploy_v1()
    changed = isvc(generation=2, annotations=annotations, status=ready.status)
    outcome = reconcile(changed, ready.revisions, {R1: READY}, now=NOW)
    assert [revision.name for revision in outcome.revisions] == revisions


# --- the Knative Service's generation, which observedGeneration copies -------------------------


def test_the_knative_service_moves_its_generation_only_when_its_spec_changes() -> None:
    ready = deploy_v1()
    assert ready.status["observedGeneration"] == 1
    assert ready.service_status is not None
    assert ready.service_status["observedGeneration"] == 1
    assert ready.route == ({"latestRevision": True, "percent": 100},)

    canary = canary_v2(30, READY)  # a new template and a new traffic block: one write
    assert canary.status["observedGeneration"] == 2
    step = reconcile(
        isvc(V2, generation=3, percent=50, status=canary.status),
        canary.revisions,
        {R1: READY, R2: READY},
        now=NOW,
        service=service_of(canary),
    )
    assert step.status["observedGeneration"] == 3  # traffic only: no revision, a new generation
    assert step.revisions == canary.revisions


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            id="an annotation KServe does not pass on",
        ),
        pytest.param(
            {"annotations": {"serving.knative.dev/rollout-duration": "60s"}},
            id="an annotation KServe moves onto the Knative Service's metadata",
        ),
    ],
)
def test_a_change_that_does_not_reach_the_knative_service_leaves_observed_generation(
    change: dict[str, Any],
) -> None:
    ready = deploy_v1()
    changed = isvc(generation=7, status=ready.status, **change)
    outcome = reconcile(changed, ready.revisions, {R1: READY}, now=NOW, service=service_of(ready))
    assert outcome.status["observedGeneration"] == 1
    assert outcome.revisions == ready.revisions


def test_a_canary_percent_before_the_first_rollout_leaves_observed_generation() -> None:
    first = reconcile(isvc(), [], {}, now=NOW)  # v1 still starting: nothing rolled out
    percent = reconcile(
        isvc(generation=2, percent=20, status=first.status),
        first.revisions,
        {R1: STARTING},
        now=NOW,
        service=service_of(first),
    )
    assert percent.route == ({"latestRevision": True, "percent": 100},)
    assert percent.status["observedGeneration"] == 1


def test_the_knative_service_status_is_what_the_isvc_status_copies() -> None:
    canary = canary_v2(30, READY)
    assert canary.service_status is not None
    component = predictor(canary)
    assert canary.service_status["latestCreatedRevisionName"] == component["latestCreatedRevision"]
    assert canary.service_status["latestReadyRevisionName"] == component["latestReadyRevision"]
    assert canary.service_status["traffic"] == component["traffic"]
    assert canary.service_status["url"] == "http://half-predictor.models.example.com"
    assert {c["type"]: c["status"] for c in canary.service_status["conditions"]} == {
        "ConfigurationsReady": "True",
        "Ready": "True",
        "RoutesReady": "True",
    }
