"""Knative Services and Revisions in ``timonel local``: written by the controller as KServe and
Knative write them, read-only to everyone else, and the source of ``observedGeneration``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, cast

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from timonel.errors import ApiError, Status
from timonel.kube.client import Cluster
from timonel.local.controller import Controller
from timonel.local.knative import revision_status, service_manifest
from timonel.local.knative_objects import KnativeObjects
from timonel.local.reconcile import (
    Failure,
    Phase,
    Revision,
    RevisionObservation,
    reconcile,
    revision_template,
)

from .kubeapi import GROUP, PLURAL, VERSION
from .test_api_kubectl import kubectl
from .test_controller import (
    NAMESPACE,
    canary_change,
    get,
    manifest,
    repo,  # noqa: F401  # the fixture
    served,
    settled,
    update,
    wait_for,
)

KNATIVE = ("serving.knative.dev", "v1")


@pytest.fixture(scope="module")
def api(kube_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_client)


def ksvc(api: client.CustomObjectsApi, isvc: str) -> dict[str, Any]:
    return dict(
        api.get_namespaced_custom_object(*KNATIVE, NAMESPACE, "services", f"{isvc}-predictor")
    )


def revisions(api: client.CustomObjectsApi, isvc: str) -> list[dict[str, Any]]:
    listing = api.list_namespaced_custom_object(
        *KNATIVE,
        NAMESPACE,
        "revisions",
        label_selector=f"serving.kserve.io/inferenceservice={isvc}",
    )
    return sorted(listing["items"], key=lambda item: item["metadata"]["name"])


def wait_for_service(
    api: client.CustomObjectsApi, isvc: str, check: Any, timeout: float = 30.0
) -> dict[str, Any]:
    """Poll the Knative Service until ``check`` holds (it may not exist yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = ksvc(api, isvc)
            if check(found):
                return found
        except ApiException as exc:
            if exc.status != 404:
                raise
            found = {}
        assert time.monotonic() < deadline, f"timed out; the Knative Service: {found}"
        time.sleep(0.05)


def ready(obj: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in (obj.get("status") or {}).get("conditions") or []
    )


@pytest.fixture(scope="module")
def canary(api: client.CustomObjectsApi, local_controller: Controller, repo: Path) -> str:  # noqa: F811
    """An InferenceService with a 30% canary of v2 beside v1, served."""
    name = "knative"
    api.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, str(repo / "half" / "v1"))
    )
    wait_for(api, name, settled)
    wait_for(api, name, served(update(api, name, canary_change(str(repo / "half" / "v2"), 30))))
    return name


def test_the_knative_service_is_written_as_kserve_writes_it(
    api: client.CustomObjectsApi, canary: str
) -> None:
    isvc = get(api, canary)
    service = wait_for_service(api, canary, ready)
    metadata = service["metadata"]
    assert metadata["labels"]["serving.kserve.io/inferenceservice"] == canary
    assert metadata["labels"]["component"] == "predictor"
    assert metadata["ownerReferences"] == [
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "name": canary,
            "uid": isvc["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    r1, r2 = f"{canary}-predictor-00001", f"{canary}-predictor-00002"
    template = service["spec"]["template"]
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/class"] == (
        "kpa.autoscaling.knative.dev"
    )
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "1"
    assert template["spec"]["containers"][0]["name"] == "kserve-container"
    assert service["spec"]["traffic"] == [
        {"latestRevision": True, "percent": 30},
        {"tag": "prev", "revisionName": r1, "latestRevision": False, "percent": 70},
    ]
    status = service["status"]
    assert status["observedGeneration"] == metadata["generation"] == 2
    assert (status["latestCreatedRevisionName"], status["latestReadyRevisionName"]) == (r2, r2)
    assert status["url"] == f"http://{canary}-predictor.{NAMESPACE}.example.com"
    # KServe's PropagateStatus copies it all into the InferenceService.
    component = isvc["status"]["components"]["predictor"]
    assert component["traffic"] == status["traffic"]
    assert isvc["status"]["observedGeneration"] == status["observedGeneration"]


def test_revisions_carry_knatives_labels_and_their_process_status(
    api: client.CustomObjectsApi, canary: str
) -> None:
    service = wait_for_service(api, canary, ready)
    found = revisions(api, canary)
    assert [r["metadata"]["name"] for r in found] == [
        f"{canary}-predictor-00001",
        f"{canary}-predictor-00002",
    ]
    for number, revision in enumerate(found, start=1):
        labels = revision["metadata"]["labels"]
        assert labels["serving.knative.dev/configuration"] == f"{canary}-predictor"
        assert labels["serving.knative.dev/configurationGeneration"] == str(number)
        assert labels["serving.knative.dev/service"] == f"{canary}-predictor"
        assert labels["serving.knative.dev/serviceUID"] == service["metadata"]["uid"]
        assert labels["serving.knative.dev/routingState"] == "active"
        owner = revision["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"]) == ("Configuration", f"{canary}-predictor")
        assert ready(revision)
        assert revision["status"]["actualReplicas"] == 1


def test_kubectl_get_ksvc_and_revisions_prints_knatives_columns(
    api: client.CustomObjectsApi, canary: str, local_kubeconfig: Path
) -> None:
    wait_for_service(api, canary, ready)
    result = kubectl(local_kubeconfig, "get", "ksvc,revisions")
    assert result.returncode == 0, result.stderr
    services, revision_table = result.stdout.strip().split("\n\n")
    header, *rows = services.splitlines()
    assert header.split() == ["NAME", "URL", "LATESTCREATED", "LATESTREADY", "READY", "REASON"]
    row = next(r.split() for r in rows if f"/{canary}-predictor " in f"{r} ")
    assert row == [
        f"service.serving.knative.dev/{canary}-predictor",
        f"http://{canary}-predictor.{NAMESPACE}.example.com",
        f"{canary}-predictor-00002",
        f"{canary}-predictor-00002",
        "True",
    ]
    header, *rows = revision_table.splitlines()
    assert header.split() == [
        "NAME",
        "CONFIG",
        "NAME",
        "GENERATION",
        "READY",
        "REASON",
        "ACTUAL",
        "REPLICAS",
        "DESIRED",
        "REPLICAS",
    ]
    mine = [r.split() for r in rows if f"/{canary}-predictor-" in r]
    assert mine == [
        [
            f"revision.serving.knative.dev/{canary}-predictor-0000{n}",
            f"{canary}-predictor",
            str(n),
            "True",
            "1",
            "1",
        ]
        for n in (1, 2)
    ]


def test_kubectl_get_revisions_by_inferenceservice_label(
    api: client.CustomObjectsApi, canary: str, local_kubeconfig: Path
) -> None:
    wait_for_service(api, canary, ready)
    result = kubectl(
        local_kubeconfig,
        "get",
        "rev",
        "-l",
        f"serving.kserve.io/inferenceservice={canary}",
        "-o",
        "name",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        f"revision.serving.knative.dev/{canary}-predictor-00001",
        f"revision.serving.knative.dev/{canary}-predictor-00002",
    ]


@pytest.mark.parametrize(
    "args",
    [
        ("delete", "ksvc", "knative-predictor"),
        ("annotate", "revision", "knative-predictor-00001", "team=vision"),
        ("label", "ksvc", "knative-predictor", "team=vision"),
    ],
    ids=["delete", "annotate", "label"],
)
def test_a_users_write_is_refused_with_what_to_change_instead(
    api: client.CustomObjectsApi, canary: str, local_kubeconfig: Path, args: tuple[str, ...]
) -> None:
    wait_for_service(api, canary, ready)
    result = kubectl(local_kubeconfig, *args)
    assert result.returncode != 0
    assert "is not allowed" in result.stderr, result.stderr
    assert "change the InferenceService instead (kubectl edit isvc knative)" in result.stderr
    assert ksvc(api, canary)["metadata"]["name"] == "knative-predictor"


def test_the_refusal_is_a_405_status_for_every_client(
    api: client.CustomObjectsApi, canary: str
) -> None:
    with pytest.raises(ApiException) as refused:
        api.patch_namespaced_custom_object(
            *KNATIVE,
            NAMESPACE,
            "services",
            f"{canary}-predictor",
            {"metadata": {"labels": {"team": "vision"}}},
        )
    body = json.loads(refused.value.body)
    assert (refused.value.status, body["reason"]) == (405, "MethodNotAllowed")
    assert (
        "On a cluster the write would be accepted and KServe would overwrite it"
        in (body["message"])
    )


def test_observed_generation_moves_only_with_the_knative_service(
    api: client.CustomObjectsApi, canary: str
) -> None:
    # Promote with 100%: the traffic block changes, and so does the Knative Service's generation.
    at_100 = update(api, canary, lambda i: i["spec"]["predictor"].update(canaryTrafficPercent=100))
    promoted = wait_for(api, canary, served(at_100))
    generation = ksvc(api, canary)["metadata"]["generation"]
    assert promoted["status"]["observedGeneration"] == generation
    # Dropping the percent asks for the same traffic block: the InferenceService's generation
    # moves, the Knative Service's does not, and neither does the observedGeneration KServe
    # copies from it; the wait still ends.
    dropped = update(api, canary, lambda i: i["spec"]["predictor"].pop("canaryTrafficPercent"))
    assert dropped[1]["metadata"]["generation"] == promoted["metadata"]["generation"] + 1
    done = wait_for(api, canary, served(dropped))
    service = ksvc(api, canary)
    assert service["metadata"]["generation"] == service["status"]["observedGeneration"]
    assert service["metadata"]["generation"] == generation
    assert done["status"]["observedGeneration"] == generation
    assert done["metadata"]["generation"] == generation + 1


def test_deleting_the_inferenceservice_takes_its_knative_objects(
    api: client.CustomObjectsApi,
    local_controller: Controller,
    repo: Path,  # noqa: F811
) -> None:
    name = "ephemeral"
    api.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, str(repo / "half" / "v1"))
    )
    wait_for(api, name, settled)
    wait_for_service(api, name, ready)
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    deadline = time.monotonic() + 20
    while revisions(api, name) or _exists(api, name):
        assert time.monotonic() < deadline, "the Knative objects outlived their InferenceService"
        time.sleep(0.05)


def _exists(api: client.CustomObjectsApi, isvc: str) -> bool:
    try:
        ksvc(api, isvc)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


# --- the pure builders -------------------------------------------------------------------------


def test_the_template_carries_what_kserve_passes_on_and_its_own_annotations() -> None:
    isvc = manifest("half", "gs://models/half/v1", minReplicas=0, maxReplicas=3, scaleTarget=5)
    isvc["metadata"].update(
        uid="u-1",
        labels={"team": "vision", "networking.knative.dev/visibility": "cluster-local"},
    )
    isvc["metadata"]["annotations"].update(
        {
            "autoscaling.knative.dev/min-scale": "7",  # on KServe's disallowed list
            "serving.knative.dev/rollout-duration": "60s",  # moved onto the Service
            "example.com/owner": "ml-team",
        }
    )
    predictor = isvc["spec"]["predictor"]
    revision = Revision("half-predictor-00001", 1, revision_template(predictor))
    service = service_manifest(isvc, revision, [{"latestRevision": True, "percent": 100}])

    template = service["spec"]["template"]["metadata"]
    assert template["labels"] == {
        "team": "vision",
        "serving.kserve.io/inferenceservice": "half",
        "component": "predictor",
    }
    annotations = template["annotations"]
    assert annotations["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"
    assert annotations["autoscaling.knative.dev/min-scale"] == "0"
    assert annotations["autoscaling.knative.dev/max-scale"] == "3"
    assert annotations["autoscaling.knative.dev/target"] == "5"
    assert annotations["example.com/owner"] == "ml-team"
    assert annotations["internal.serving.kserve.io/storage-initializer-sourceuri"] == (
        "gs://models/half/v1"
    )
    assert "serving.knative.dev/rollout-duration" not in annotations
    assert service["metadata"]["annotations"]["serving.knative.dev/rollout-duration"] == "60s"
    assert service["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"


@pytest.mark.parametrize(
    ("observation", "ready", "reason"),
    [
        (RevisionObservation(phase=Phase.READY, has_been_ready=True), "True", None),
        (RevisionObservation(phase=Phase.STARTING), "Unknown", "Deploying"),
        (
            RevisionObservation(phase=Phase.FAILED, last_failure=Failure("bad graph", exit_code=1)),
            "False",
            "ExitCode1",
        ),
    ],
    ids=["ready", "deploying", "failed before it was ever ready"],
)
def test_a_revisions_status_follows_its_process(
    observation: RevisionObservation, ready: str, reason: str | None
) -> None:
    status = revision_status(
        Revision("half-predictor-00001", 1), observation, replicas=[observation]
    )
    condition = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (condition["status"], condition.get("reason")) == (ready, reason)
    assert status["desiredReplicas"] == 1
    assert status["actualReplicas"] == (1 if observation.phase is Phase.READY else 0)


def test_a_revision_scaled_to_zero_stays_ready_and_inactive() -> None:
    observation = RevisionObservation(phase=Phase.STOPPED, has_been_ready=True)
    status = revision_status(Revision("half-predictor-00001", 1), observation, replicas=[])
    by_type = {c["type"]: c for c in status["conditions"]}
    assert by_type["Ready"]["status"] == "True"
    assert (by_type["Active"]["status"], by_type["Active"]["reason"]) == ("False", "NoTraffic")
    assert (status["actualReplicas"], status["desiredReplicas"]) == (0, 0)


class _GoneOnReplace:
    """An API whose Knative Service is deleted (by the garbage collector following its
    InferenceService) between the controller's read and its write."""

    def __init__(self, service: dict[str, Any]) -> None:
        self.service = service

    def send(self, request: Any) -> dict[str, Any]:
        if request.method == "GET":
            return self.service
        raise ApiError("gone", status=Status(404, "NotFound"))


def test_a_knative_service_deleted_under_the_write_asks_for_another_pass() -> None:
    isvc = manifest("half", "gs://models/half/v1")
    isvc["metadata"].update(uid="u-1", generation=1)
    revision = Revision("half-predictor-00001", 1, revision_template(isvc["spec"]["predictor"]))
    observed = {revision.name: RevisionObservation(phase=Phase.READY, has_been_ready=True)}
    outcome = reconcile(isvc, [revision], observed, now="2026-01-01T00:00:00Z")
    service = service_manifest(isvc, revision, outcome.route)
    service["metadata"]["resourceVersion"] = "7"
    objects = KnativeObjects(cast(Cluster, _GoneOnReplace(service)))

    assert objects.write(isvc, outcome, observed, replicas={}, now="2026-01-01T00:00:00Z")
