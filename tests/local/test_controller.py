"""The controller against the local API server, through the real ``kubernetes`` client.

Revisions run the stand-in server (``standin_server.py``) so the KServe lifecycle (deploy, canary,
promote, rollback, delete, crash, failures) runs in seconds; ``test_controller_serve.py`` runs the
same flow on the real ``timonel serve``. Predictions go through the ingress by the Host of
``status.url`` (or of a tag's URL), as a client on a cluster sends them.
"""

from __future__ import annotations

import copy
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from timonel.kube.wait import assess, goal_for
from timonel.local.controller import Controller
from timonel.local.ingress.router import Ingress, running
from timonel.local.reconcile import Phase
from timonel.local.revisions import RevisionKey

from .kubeapi import GROUP, PLURAL, VERSION
from .standin_server import write_model

NAMESPACE = "default"


@pytest.fixture(scope="module")
def api(kube_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_client)


@contextmanager
def ingress_of(controller: Controller) -> Iterator[str]:
    """The controller's ingress, serving on a free port; its URL."""
    router = Ingress(controller)
    controller.listen(router.update)
    with running(router) as served:
        yield served.url


@pytest.fixture(scope="module")
def ingress(local_controller: Controller) -> Iterator[str]:
    with ingress_of(local_controller) as url:
        yield url


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model repository: v1 and v2 of a model as TF Serving version folders, and a broken v3."""
    root = tmp_path_factory.mktemp("repo")
    write_model(root / "half" / "v1", version=1)
    write_model(root / "half" / "v2", version=2)
    write_model(root / "half" / "v3", version=3, graph=b"corrupt graph")
    return root


def manifest(name: str, uri: str, **predictor: Any) -> dict[str, Any]:
    model: dict[str, Any] = {"modelFormat": {"name": "tensorflow"}, "storageUri": uri}
    if "resources" in predictor:
        model["resources"] = predictor.pop("resources")
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "InferenceService",
        "metadata": {"name": name, "annotations": {"serving.kserve.io/deploymentMode": "Knative"}},
        "spec": {"predictor": {"model": model, **predictor}},
    }


def get(api: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    return dict(api.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name))


def wait_for(
    api: client.CustomObjectsApi,
    name: str,
    check: Callable[[dict[str, Any]], bool],
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Read the InferenceService until ``check`` holds (bounded in time), and return it."""
    deadline = time.monotonic() + timeout
    while True:
        isvc = get(api, name)
        if check(isvc):
            return isvc
        assert time.monotonic() < deadline, f"timed out; last status: {isvc.get('status')}"
        time.sleep(0.05)


def wait_until_reaped(pid: int, what: str, timeout: float = 20.0) -> None:
    """Poll until ``pid`` names no process, not even a zombie: the supervisor forgets a revision
    before its process has ended and been reaped, so a stopped revision's pid lingers briefly."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        assert time.monotonic() < deadline, f"{what} (pid {pid}) is still there after {timeout} s"
        time.sleep(0.05)


def condition(isvc: dict[str, Any], kind: str) -> dict[str, Any]:
    for item in (isvc.get("status") or {}).get("conditions") or []:
        if item["type"] == kind:
            return dict(item)
    return {}


def settled(isvc: dict[str, Any]) -> bool:
    """Ready, with the latest created revision the latest ready one: what a new InferenceService
    (or one changed with ``update``, the goal of which ``served`` judges) shows once served.

    Not ``observedGeneration == metadata.generation``: KServe copies the Knative Service's
    generation there, which a change that does not reach the Knative Service leaves behind."""
    component = ((isvc.get("status") or {}).get("components") or {}).get("predictor") or {}
    latest = component.get("latestCreatedRevision")
    return (
        condition(isvc, "Ready").get("status") == "True"
        and latest is not None
        and component.get("latestReadyRevision") == latest
    )


def served(change: tuple[dict[str, Any], dict[str, Any]]) -> Callable[[dict[str, Any]], bool]:
    """Whether the status shows what an ``update`` asked for, judged as ``timonel.kube.wait``
    judges it on a cluster: from the object before the write and the one the write returned."""
    goal = goal_for(change[1], change[0])
    return lambda isvc: assess(isvc, goal).done


def ready_at(revision: str) -> Callable[[dict[str, Any]], bool]:
    """Settled, with ``revision`` the latest ready one."""

    def check(isvc: dict[str, Any]) -> bool:
        component = isvc["status"]["components"]["predictor"]
        return settled(isvc) and component.get("latestReadyRevision") == revision

    return check


def canary_change(uri: str, percent: int) -> Callable[[dict[str, Any]], None]:
    """A canary as one update: the new release and its share of the traffic."""

    def change(isvc: dict[str, Any]) -> None:
        isvc["spec"]["predictor"]["model"]["storageUri"] = uri
        isvc["spec"]["predictor"]["canaryTrafficPercent"] = percent

    return change


def update(
    api: client.CustomObjectsApi, name: str, change: Callable[[dict[str, Any]], None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read, change and replace the InferenceService, retrying a conflict on a fresh read; the
    object before the change and the one the write returned (for ``served``)."""
    for _ in range(10):
        before = get(api, name)
        isvc = copy.deepcopy(before)
        change(isvc)
        try:
            written = api.replace_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, name, isvc
            )
            return before, written
        except ApiException as exc:
            if exc.status != 409:
                raise
    raise AssertionError("kept conflicting")


def host_of(isvc: dict[str, Any], revision: str | None = None) -> str:
    """The Host reaching ``revision`` alone: its tag's URL, or the InferenceService's URL when it
    takes all the traffic; without a revision, the InferenceService's URL (its split)."""
    status = isvc["status"]
    if revision is not None:
        for target in status["components"]["predictor"]["traffic"]:
            if target["revisionName"] == revision and (
                target.get("url") or target["percent"] == 100
            ):
                return str(urlsplit(target.get("url") or status["url"]).hostname)
        raise AssertionError(f"no host reaches {revision} alone: {status['components']}")
    return str(urlsplit(status["url"]).hostname)


def predict(ingress: str, isvc: dict[str, Any], revision: str | None = None) -> Any:
    """Predict through the ingress, by the Host of ``host_of(isvc, revision)``."""
    name = isvc["metadata"]["name"]
    reply = httpx.post(
        f"{ingress}/v1/models/{name}:predict",
        json={"instances": [1.0]},
        headers={"Host": host_of(isvc, revision)},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["predictions"]


def traffic(isvc: dict[str, Any]) -> list[tuple[str, int, str]]:
    return [
        (t["revisionName"], t["percent"], t.get("tag", ""))
        for t in isvc["status"]["components"]["predictor"]["traffic"]
    ]


def test_lifecycle_deploy_canary_promote_rollback_delete(
    api: client.CustomObjectsApi, local_controller: Controller, ingress: str, repo: Path
) -> None:
    name = "life"
    r1, r2 = f"{name}-predictor-00001", f"{name}-predictor-00002"
    api.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, str(repo / "half" / "v1"))
    )
    deployed = wait_for(api, name, settled)
    status = deployed["status"]
    assert status["url"] == f"http://{name}.default.example.com"
    assert status["address"] == {"url": f"http://{name}.default.svc.cluster.local"}
    assert status["deploymentMode"] == "Knative"
    assert status["modelStatus"]["states"] == {
        "activeModelState": "Loaded",
        "targetModelState": "Loaded",
    }
    component = status["components"]["predictor"]
    assert component["url"] == f"http://{name}-predictor.default.example.com"
    assert component["latestReadyRevision"] == component["latestRolledoutRevision"] == r1
    assert traffic(deployed) == [(r1, 100, "")]
    assert predict(ingress, deployed, r1) == [1]

    # Canary: the new release and the percent in one update.
    update(api, name, canary_change(str(repo / "half" / "v2"), 30))
    split = wait_for(api, name, ready_at(r2))
    assert traffic(split) == [(r2, 30, ""), (r1, 70, "prev")]
    assert split["status"]["components"]["predictor"]["latestRolledoutRevision"] == r1
    assert predict(ingress, split, r1) == [1]  # by the prev tag's host
    assert {predict(ingress, split)[0] for _ in range(40)} == {1, 2}

    # Roll back: percent 0 keeps the new spec and sends everything to the previous revision.
    rollback = update(api, name, lambda i: i["spec"]["predictor"].update(canaryTrafficPercent=0))
    back = wait_for(api, name, served(rollback))
    assert traffic(back) == [(r2, 0, ""), (r1, 100, "prev")]

    # Promote: the percent removed gives the latest revision everything; v1's process stops.
    promotion = update(api, name, lambda i: i["spec"]["predictor"].pop("canaryTrafficPercent"))
    promoted = wait_for(api, name, served(promotion))
    component = promoted["status"]["components"]["predictor"]
    assert traffic(promoted) == [(r2, 100, "")]
    assert component["latestRolledoutRevision"] == r2
    assert component["previousRolledoutRevision"] == r1
    deadline = time.monotonic() + 20
    while local_controller.revision_pid(NAMESPACE, name, r1) is not None:
        assert time.monotonic() < deadline, "the promoted-away revision's process still runs"
        time.sleep(0.05)
    pid = local_controller.revision_pid(NAMESPACE, name, r2)
    assert pid is not None

    # Delete: the revision's process ends.
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    wait_until_reaped(pid, "the deleted InferenceService's process")
    assert local_controller.revision_pid(NAMESPACE, name, r2) is None


def test_killed_revision_process_is_restarted(
    api: client.CustomObjectsApi, local_controller: Controller, ingress: str, repo: Path
) -> None:
    name = "crash"
    revision = f"{name}-predictor-00001"
    api.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, str(repo / "half" / "v1"))
    )
    wait_for(api, name, settled)
    first = local_controller.revision_pid(NAMESPACE, name, revision)
    assert first is not None

    os.kill(first, signal.SIGKILL)

    key = RevisionKey(NAMESPACE, name, revision)
    deadline = time.monotonic() + 30
    while (state := local_controller.revision_state(key)) is None or (
        state.restarts,
        state.phase,
    ) != (1, Phase.READY):
        assert time.monotonic() < deadline, f"not restarted: {state}"
        time.sleep(0.05)
    assert local_controller.revision_pid(NAMESPACE, name, revision) not in (None, first)
    again = wait_for(api, name, settled)
    assert predict(ingress, again, revision) == [1]
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_missing_model_is_reported_as_kserve_does(
    api: client.CustomObjectsApi, local_controller: Controller, tmp_path: Path
) -> None:
    name = "missing"
    uri = str(tmp_path / "no-such-model")
    api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, uri))
    failed = wait_for(api, name, lambda i: condition(i, "Ready").get("status") == "False")

    info = failed["status"]["modelStatus"]["lastFailureInfo"]
    assert info["reason"] == "ModelLoadFailed"
    assert info["message"].startswith(f"Failed to fetch model. No model found in {uri}")
    assert failed["status"]["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
    assert condition(failed, "PredictorReady")["reason"] == "RevisionMissing"
    assert condition(failed, "PredictorReady")["message"] == (
        f'Configuration "{name}-predictor" does not have any ready Revision.'
    )
    assert condition(failed, "PredictorConfigurationReady")["message"].startswith(
        f'Revision "{name}-predictor-00001" failed with message: Container failed with: '
        f"Failed to fetch model. No model found in {uri}"
    )
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_corrupt_canary_keeps_traffic_on_the_old_revision(
    api: client.CustomObjectsApi, local_controller: Controller, ingress: str, repo: Path
) -> None:
    name = "corrupt"
    r1, r2 = f"{name}-predictor-00001", f"{name}-predictor-00002"
    api.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, str(repo / "half" / "v1"))
    )
    wait_for(api, name, settled)

    update(api, name, canary_change(str(repo / "half" / "v3"), 20))
    failed = wait_for(
        api,
        name,
        lambda i: (
            i["status"]["components"]["predictor"].get("latestCreatedRevision") == r2
            and condition(i, "Ready").get("status") == "False"
        ),
    )

    assert traffic(failed) == [(r1, 20, ""), (r1, 80, "prev")]
    assert condition(failed, "PredictorConfigurationReady")["reason"] == "RevisionFailed"
    assert condition(failed, "PredictorConfigurationReady")["message"] == (
        f'Revision "{r2}" failed with message: Container failed with: '
        f"Failed to load servable {name} version 3: bad graph."
    )
    model_status = failed["status"]["modelStatus"]
    assert model_status["states"] == {
        "activeModelState": "Loaded",
        "targetModelState": "FailedToLoad",
    }
    assert model_status["lastFailureInfo"] == {
        "exitCode": 1,
        "message": f"Failed to load servable {name} version 3: bad graph",
        "reason": "ModelLoadFailed",
    }
    assert predict(ingress, failed, r1) == [1]
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_gpu_request_runs_on_the_cpu_with_a_note(
    api: client.CustomObjectsApi, local_controller: Controller, ingress: str, repo: Path
) -> None:
    name = "gpu"
    body = manifest(name, str(repo / "half" / "v1"), resources={"limits": {"nvidia.com/gpu": "1"}})
    api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    ready = wait_for(api, name, settled)

    note = condition(ready, "LocalCPUFallback")
    assert (note["status"], note["severity"], note["reason"]) == (
        "True",
        "Info",
        "GPURequestedOnCPU",
    )
    assert "nvidia.com/gpu: 1" in note["message"]
    assert predict(ingress, ready, f"{name}-predictor-00001") == [1]
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_stop_annotation_stops_the_revisions_and_removing_it_starts_over(
    api: client.CustomObjectsApi, local_controller: Controller, ingress: str, repo: Path
) -> None:
    name = "paused"
    api.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, str(repo / "half" / "v1"))
    )
    wait_for(api, name, settled)
    assert local_controller.revision_pid(NAMESPACE, name, f"{name}-predictor-00001") is not None

    stop = {"metadata": {"annotations": {"serving.kserve.io/stop": "true"}}}
    api.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name, stop)
    stopped = wait_for(api, name, lambda i: condition(i, "Stopped").get("status") == "True")
    assert condition(stopped, "Ready")["reason"] == "Stopped"
    assert "components" not in stopped["status"] and "url" not in stopped["status"]
    assert not any(key.isvc == name for key in local_controller.running_revisions())

    resume = {"metadata": {"annotations": {"serving.kserve.io/stop": None}}}
    api.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name, resume)
    resumed = wait_for(api, name, settled)
    assert condition(resumed, "Stopped")["status"] == "False"
    assert traffic(resumed) == [(f"{name}-predictor-00001", 100, "")]
    assert predict(ingress, resumed, f"{name}-predictor-00001") == [1]
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_the_shipped_runtime_serves_and_a_missing_one_is_reported_as_kserve_does(
    api: client.CustomObjectsApi, local_controller: Controller, repo: Path
) -> None:
    api.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest("runs", str(repo / "half" / "v1"))
    )
    ready = wait_for(api, "runs", settled)
    assert ready["status"]["clusterServingRuntimeName"] == "timonel-tensorflow-serving"

    missing = manifest("orphan", str(repo / "half" / "v1"))
    missing["spec"]["predictor"]["model"]["runtime"] = "no-such-runtime"
    api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, missing)
    refused = wait_for(api, "orphan", lambda i: "modelStatus" in (i.get("status") or {}))
    assert refused["status"]["modelStatus"]["transitionStatus"] == "InvalidSpec"
    assert refused["status"]["modelStatus"]["lastFailureInfo"] == {
        "reason": "RuntimeNotRecognized",
        "message": "Waiting for runtime to become available",
    }
    assert "components" not in refused["status"]
    for name in ("runs", "orphan"):
        api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
