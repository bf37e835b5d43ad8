"""Standard mode on the local API server: Deployments, ReplicaSets, Pods, Services and processes.

Revisions run the stand-in server (``standin_server.py``), which answers with its model's version,
so the ingress's split shows which predictor answered. Canary, promote and roll back go through
Timonel's own SDK (``timonel.canary``, ``promote``, ``rollback``, which wait as on a cluster).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

import timonel
from timonel.kube.client import Cluster
from timonel.local.controller import Controller
from timonel.local.workloads import machine_replica_limit

from . import test_api_kserve, test_controller, test_pods
from .kubeapi import GROUP, PLURAL, VERSION
from .test_api_kserve import isvc_model
from .test_api_kubectl import kubectl
from .test_controller import condition, get, ingress_of, manifest, served, update, wait_for

NAMESPACE = "default"

# One state directory for the API server and the controller, so pods' logs are served.
home = test_pods.home
local_api = test_pods.local_api
local_controller = test_pods.local_controller
kserve_client = test_api_kserve.kserve_client
api, ingress, repo = test_controller.api, test_controller.ingress, test_controller.repo
STANDARD = {"serving.kserve.io/deploymentMode": "Standard"}


@pytest.fixture(scope="module")
def apps(kube_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(kube_client)


@pytest.fixture(scope="module")
def core(kube_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(kube_client)


@pytest.fixture(scope="module")
def cluster(local_kubeconfig: Path) -> Iterator[Cluster]:
    with Cluster.connect(kubeconfig=local_kubeconfig) as connected:
        yield connected


def standard(name: str, uri: str, **predictor: Any) -> dict[str, Any]:
    body = manifest(name, uri, **predictor)
    body["metadata"]["annotations"] = dict(STANDARD)
    return body


def ready(isvc: dict[str, Any]) -> bool:
    return condition(isvc, "Ready").get("status") == "True"


def deploy(api: client.CustomObjectsApi, name: str, uri: str) -> dict[str, Any]:
    """Create a Standard-mode InferenceService and wait until it is Ready."""
    api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, standard(name, uri))
    return wait_for(api, name, ready)


def pods_of(core: client.CoreV1Api, deployment: str) -> list[Any]:
    found = core.list_namespaced_pod(NAMESPACE, label_selector=f"app=isvc.{deployment}").items
    return [pod for pod in found if pod.metadata.deletion_timestamp is None]


def answers(ingress: str, host: str, name: str, count: int) -> list[int]:
    """``count`` predictions through the ingress by ``host``: which version answered each."""
    seen = []
    with httpx.Client(timeout=30) as session:
        for _ in range(count):
            reply = session.post(
                f"{ingress}/v1/models/{name}:predict",
                json={"instances": [1.0]},
                headers={"Host": host},
            )
            assert reply.status_code == 200, reply.text
            seen.append(int(reply.json()["predictions"][0]))
    return seen


def routed(ingress: str, host: str, name: str, timeout: float = 30.0) -> None:
    """Wait until the ingress routes ``host``: a new ingress learns the routes from the
    controller's next reconcile of each InferenceService, which may come after it reads Ready."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=30) as session:
        while (
            session.post(
                f"{ingress}/v1/models/{name}:predict",
                json={"instances": [1.0]},
                headers={"Host": host},
            ).status_code
            == 404
        ):
            assert time.monotonic() < deadline, (
                f"the ingress has no route for {host} after {timeout} s"
            )
            time.sleep(0.05)


def gone(controller: Controller, name: str, timeout: float = 20.0) -> None:
    """Wait until no process of the InferenceService runs (a stop drains, then terminates)."""
    deadline = time.monotonic() + timeout
    while any(key.isvc == name for key in controller.running_revisions()):
        assert time.monotonic() < deadline, f"{name}'s processes still run after {timeout} s"
        time.sleep(0.05)


def within_binomial_bounds(hits: int, trials: int, p: float, sigmas: float = 4.0) -> bool:
    spread = sigmas * math.sqrt(trials * p * (1 - p))
    return abs(hits - trials * p) <= spread


def test_deploy_makes_a_deployment_replicaset_pods_and_a_service_as_kserve_does(
    api: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    core: client.CoreV1Api,
    local_controller: Controller,
    ingress: str,
    repo: Path,
    local_kubeconfig: Path,
) -> None:
    name = "raw"
    body = standard(name, str(repo / "half" / "v1"), minReplicas=2)
    api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    deployed = wait_for(api, name, ready)
    status = deployed["status"]
    assert status["deploymentMode"] == "Standard"
    assert status["url"] == f"http://{name}-default.example.com"
    assert status["address"] == {"url": f"http://{name}-predictor.default.svc.cluster.local"}
    assert (
        status["components"]["predictor"]["url"] == f"http://{name}-predictor-default.example.com"
    )
    assert status["observedGeneration"] == 1  # the Deployment's, as KServe copies it
    assert condition(deployed, "PredictorReady")["reason"] == "NewReplicaSetAvailable"
    assert "canaryStatuses" not in status
    # KServe judges the model Loaded from the Ready it wrote before: one reconcile later.
    loaded = wait_for(
        api, name, lambda i: i["status"]["modelStatus"]["transitionStatus"] == "UpToDate"
    )
    assert loaded["status"]["modelStatus"]["states"] == {
        "activeModelState": "Loaded",
        "targetModelState": "Loaded",
    }
    assert loaded["status"]["modelStatus"]["copies"] == {"failedCopies": 0, "totalCopies": 2}

    deployment = apps.read_namespaced_deployment(f"{name}-predictor", NAMESPACE)
    assert deployment.spec.replicas == 2
    assert deployment.metadata.labels["serving.kserve.io/inferenceservice"] == name
    assert deployment.metadata.labels["component"] == "predictor"
    assert deployment.status.ready_replicas == 2
    assert {c.type: c.status for c in deployment.status.conditions} == {
        "Available": "True",
        "Progressing": "True",
    }
    replica_sets = apps.list_namespaced_replica_set(
        NAMESPACE, label_selector=f"app=isvc.{name}-predictor"
    ).items
    assert len(replica_sets) == 1
    hash_ = replica_sets[0].metadata.labels["pod-template-hash"]
    assert replica_sets[0].metadata.name == f"{name}-predictor-{hash_}"
    pods = pods_of(core, f"{name}-predictor")
    assert len(pods) == 2
    assert all(pod.metadata.name.startswith(f"{name}-predictor-{hash_}-") for pod in pods)
    assert all(pod.status.phase == "Running" for pod in pods)
    service = core.read_namespaced_service(f"{name}-predictor", NAMESPACE)
    assert service.spec.selector == {"app": f"isvc.{name}-predictor"}
    assert service.spec.ports[0].port == 80
    assert set(answers(ingress, f"{name}-default.example.com", name, 10)) == {1}

    shown = kubectl(
        local_kubeconfig,
        "get",
        "deploy,rs,svc,pods",
        "-l",
        f"serving.kserve.io/inferenceservice={name}",
        "-o",
        "name",
    )
    assert shown.returncode == 0, shown.stderr
    assert sorted(shown.stdout.split()) == sorted(
        [
            f"deployment.apps/{name}-predictor",
            f"replicaset.apps/{name}-predictor-{hash_}",
            f"service/{name}-predictor",
            *(f"pod/{pod.metadata.name}" for pod in pods),
        ]
    )
    table = kubectl(local_kubeconfig, "get", "deploy", f"{name}-predictor", "-o", "wide")
    header, row = table.stdout.splitlines()[:2]
    assert header.split()[:5] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert row.split()[:4] == [f"{name}-predictor", "2/2", "2", "2"]
    assert row.split()[5:] == [
        "kserve-container",
        "local/timonel-serve",
        f"app=isvc.{name}-predictor",
    ]
    for pod in pods:  # each Pod's log is its own process's
        logs = kubectl(local_kubeconfig, "logs", pod.metadata.name, "-c", "kserve-container")
        assert logs.returncode == 0, logs.stderr
        assert logs.stdout.startswith(f"serving {name} version 1 on "), logs.stdout
    ports = {
        kubectl(local_kubeconfig, "logs", pod.metadata.name).stdout.split()[-1] for pod in pods
    }
    assert len(ports) == 2

    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    deadline = time.monotonic() + 20
    while apps.list_namespaced_deployment(
        NAMESPACE, label_selector=f"serving.kserve.io/inferenceservice={name}"
    ).items or pods_of(core, f"{name}-predictor"):
        assert time.monotonic() < deadline, "the deleted InferenceService's workload stayed"
        time.sleep(0.05)
    gone(local_controller, name)


def test_canary_promote_rollback_and_delete_through_timonel(
    api: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    core: client.CoreV1Api,
    local_controller: Controller,
    ingress: str,
    cluster: Cluster,
    repo: Path,
) -> None:
    name = "rawcanary"
    host = f"{name}-default.example.com"
    deploy(api, name, str(repo / "half" / "v1"))

    # A canary at 20% beside the stable predictor: its own Deployment, weighted once ready.
    split = timonel.canary(name, str(repo / "half" / "v2"), 20, cluster=cluster, timeout=60)
    assert split.ready
    isvc = get(api, name)
    assert isvc["status"]["canaryStatuses"] == [
        {"name": "canary-1", "ready": True, "trafficPercent": 20}
    ]
    assert condition(isvc, "CanaryPredictorReady")["status"] == "True"
    canary = apps.read_namespaced_deployment(f"{name}-canary-1-predictor", NAMESPACE)
    assert canary.spec.replicas == 1  # ceil(1 x 20 / 100)
    assert len(pods_of(core, f"{name}-predictor")) == 1
    seen = answers(ingress, host, name, 300)
    assert within_binomial_bounds(seen.count(2), len(seen), 0.20), seen.count(2)
    by_service = f"{name}-canary-1-predictor.default.svc.cluster.local"
    assert set(answers(ingress, by_service, name, 10)) == {2}

    # Roll back: the canary goes, all traffic on the stable predictor.
    timonel.rollback(name, cluster=cluster, timeout=60)
    back = get(api, name)
    assert "canaryStatuses" not in back["status"]
    assert condition(back, "CanaryPredictorReady") == {}
    assert set(answers(ingress, host, name, 20)) == {1}
    assert not pods_of(core, f"{name}-canary-1-predictor")

    # Promote: the canary's Deployment (and its pods) becomes the stable one; the old one goes.
    timonel.canary(name, str(repo / "half" / "v2"), 20, cluster=cluster, timeout=60)
    second = get(api, name)["spec"]["canary"][0]["predictor"]["name"]
    canary_pods = {pod.metadata.name for pod in pods_of(core, f"{name}-{second}-predictor")}
    assert len(canary_pods) == 1
    timonel.promote(name, cluster=cluster, timeout=60)
    promoted = get(api, name)
    assert promoted["spec"]["predictor"]["name"] == second
    assert ready(promoted)
    deployments = apps.list_namespaced_deployment(
        NAMESPACE, label_selector=f"serving.kserve.io/inferenceservice={name}"
    ).items
    assert [d.metadata.name for d in deployments] == [f"{name}-{second}-predictor"]
    assert {pod.metadata.name for pod in pods_of(core, f"{name}-{second}-predictor")} == canary_pods
    assert not pods_of(core, f"{name}-predictor")
    assert set(answers(ingress, host, name, 20)) == {2}

    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    gone(local_controller, name)


@pytest.mark.slow
@pytest.mark.usefixtures("local_controller")
def test_kserve_client_creates_watches_waits_for_and_deletes_a_standard_isvc(
    kserve_client: Any,
    apps: client.AppsV1Api,
    repo: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "rawclient"
    model = isvc_model(name, str(repo / "half" / "v1"))
    model.metadata.annotations = dict(STANDARD)
    created = kserve_client.create(model)
    assert created["metadata"]["annotations"] == STANDARD
    kserve_client.get(name, namespace=NAMESPACE, watch=True, timeout_seconds=60)
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert rows[-1] == [name, "True", "0", "100", f"http://{name}-default.example.com"]
    kserve_client.wait_isvc_ready(name, namespace=NAMESPACE, timeout_seconds=60, polling_interval=1)
    # KServe copies the Deployment's observedGeneration, which is 1 after the first rollout.
    assert kserve_client.is_isvc_ready(name, namespace=NAMESPACE, expected_generation=1)
    assert kserve_client.get(name, namespace=NAMESPACE)["status"]["deploymentMode"] == "Standard"
    kserve_client.delete(name, namespace=NAMESPACE)
    deadline = time.monotonic() + 20
    while apps.list_namespaced_deployment(
        NAMESPACE, label_selector=f"serving.kserve.io/inferenceservice={name}"
    ).items:
        assert time.monotonic() < deadline, "the deleted InferenceService's Deployment stayed"
        time.sleep(0.05)


def test_replicas_past_the_machine_limit_stay_unschedulable_and_a_deleted_pod_comes_back(
    api: client.CustomObjectsApi,
    core: client.CoreV1Api,
    local_controller: Controller,
    repo: Path,
) -> None:
    name = "rawmany"
    limit = machine_replica_limit()
    body = standard(name, str(repo / "half" / "v1"), minReplicas=limit + 1)
    api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)

    def scheduled(pod: Any) -> bool:
        return any(c.type == "PodScheduled" and c.status == "True" for c in pod.status.conditions)

    deadline = time.monotonic() + 30
    while True:
        pods = pods_of(core, f"{name}-predictor")
        running = [pod for pod in pods if pod.status and pod.status.phase == "Running"]
        if len(pods) == limit + 1 and len(running) == limit:
            break
        assert time.monotonic() < deadline, [(p.metadata.name, p.status.phase) for p in pods]
        time.sleep(0.05)
    (waiting,) = [pod for pod in pods if pod.status.phase == "Pending"]
    (unscheduled,) = [c for c in waiting.status.conditions if c.type == "PodScheduled"]
    assert (unscheduled.status, unscheduled.reason) == ("False", "Unschedulable")
    assert "Insufficient cpu" in unscheduled.message
    isvc = wait_for(api, name, lambda i: "PredictorReady" in str(i.get("status")))
    assert condition(isvc, "PredictorReady")["reason"] == "MinimumReplicasUnavailable"

    # kubectl delete pod: the ReplicaSet makes another, and its process starts again.
    victim = next(pod for pod in pods if scheduled(pod))
    core.delete_namespaced_pod(victim.metadata.name, NAMESPACE)
    deadline = time.monotonic() + 30
    while True:
        pods = pods_of(core, f"{name}-predictor")
        names = {pod.metadata.name for pod in pods}
        running = [pod for pod in pods if pod.status and pod.status.phase == "Running"]
        if victim.metadata.name not in names and len(running) == limit:
            break
        assert time.monotonic() < deadline, [(p.metadata.name, p.status.phase) for p in pods]
        time.sleep(0.05)
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    gone(local_controller, name)


def test_the_stop_annotation_deletes_the_workload_and_removing_it_brings_it_back(
    api: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    local_controller: Controller,
    repo: Path,
) -> None:
    name = "rawstop"
    deploy(api, name, str(repo / "half" / "v1"))

    def deployments() -> list[str]:
        found = apps.list_namespaced_deployment(
            NAMESPACE, label_selector=f"serving.kserve.io/inferenceservice={name}"
        ).items
        return [d.metadata.name for d in found]

    stop = {"metadata": {"annotations": {"serving.kserve.io/stop": "true"}}}
    api.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name, stop)
    stopped = wait_for(api, name, lambda i: condition(i, "Stopped").get("status") == "True")
    assert stopped["status"]["deploymentMode"] == "Standard"
    assert condition(stopped, "PredictorReady")["status"] == "False"
    wait_for(api, name, lambda i: not deployments())
    gone(local_controller, name)

    resume = {"metadata": {"annotations": {"serving.kserve.io/stop": None}}}
    api.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name, resume)
    wait_for(api, name, ready)
    assert deployments() == [f"{name}-predictor"]
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    gone(local_controller, name)


def switched_within(ingress: str, host: str, name: str, version: int) -> float:
    """Seconds from now until the ingress answers only with ``version`` (20 answers in a row),
    counted to the first answer of that run; bounded at 10 s."""
    start = time.monotonic()
    streak_began, streak = start, 0
    with httpx.Client(timeout=30) as session:
        while streak < 20:
            sent = time.monotonic()
            assert sent - start < 10, f"{name} still answers with other versions after 10 s"
            reply = session.post(
                f"{ingress}/v1/models/{name}:predict",
                json={"instances": [1.0]},
                headers={"Host": host},
            )
            if int(reply.json()["predictions"][0]) != version:
                streak = 0
            elif streak == 0:
                streak_began, streak = sent, 1
            else:
                streak += 1
    return streak_began - start


def test_rollback_and_promote_move_the_standard_split_within_a_second(
    api: client.CustomObjectsApi,
    local_controller: Controller,
    ingress: str,
    cluster: Cluster,
    repo: Path,
) -> None:
    name = "rawswitch"
    host = f"{name}-default.example.com"
    deploy(api, name, str(repo / "half" / "v1"))
    timonel.canary(name, str(repo / "half" / "v2"), 50, cluster=cluster, timeout=60)
    timonel.rollback(name, cluster=cluster, wait=False)
    assert switched_within(ingress, host, name, 1) < 1.0
    timonel.canary(name, str(repo / "half" / "v2"), 50, cluster=cluster, timeout=60)
    timonel.promote(name, cluster=cluster, wait=False)
    assert switched_within(ingress, host, name, 2) < 1.0
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    gone(local_controller, name)


def test_a_new_model_without_a_canary_is_a_rolling_update_of_the_deployment(
    api: client.CustomObjectsApi,
    apps: client.AppsV1Api,
    local_controller: Controller,
    ingress: str,
    repo: Path,
) -> None:
    name = "rawroll"
    host = f"{name}-default.example.com"
    deploy(api, name, str(repo / "half" / "v1"))
    change = update(
        api,
        name,
        lambda i: i["spec"]["predictor"]["model"].update(storageUri=str(repo / "half" / "v2")),
    )
    # Timonel's wait ends when the Deployment has seen the change and its rollout is over:
    # PredictorReady has the Deployment's NewReplicaSetAvailable, no longer the old pods' Available.
    rolled = wait_for(api, name, served(change))
    assert rolled["status"]["observedGeneration"] == 2  # the Deployment's second generation
    assert condition(rolled, "PredictorReady")["reason"] == "NewReplicaSetAvailable"
    assert set(answers(ingress, host, name, 10)) == {2}
    replica_sets = apps.list_namespaced_replica_set(
        NAMESPACE, label_selector=f"app=isvc.{name}-predictor"
    ).items
    assert sorted(rs.spec.replicas for rs in replica_sets) == [0, 1]  # the old one kept at 0
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    gone(local_controller, name)


def test_a_restarted_controller_runs_the_deployments_pods_again(tmp_path: Path) -> None:
    from localcluster import controller

    from .standin_server import write_model
    from .test_controller_restarts import cluster as restartable

    v1 = write_model(tmp_path / "repo" / "v1", version=1)
    name = "rawkept"
    with restartable(tmp_path) as (kubeconfig, api):
        core = client.CoreV1Api(api.api_client)
        with controller(kubeconfig, tmp_path / "controller") as first:
            api.create_namespaced_custom_object(
                GROUP, VERSION, NAMESPACE, PLURAL, standard(name, str(v1), minReplicas=2)
            )
            wait_for(api, name, ready)
            pods = {pod.metadata.name for pod in pods_of(core, f"{name}-predictor")}
        assert not first.running_revisions()

        # The Pods stay in the API; the next controller runs their processes again.
        with controller(kubeconfig, tmp_path / "controller") as second, ingress_of(second) as url:
            wait_for(api, name, lambda i: ready(i) and bool(second.running_revisions()))
            routed(url, f"{name}-default.example.com", name)
            assert set(answers(url, f"{name}-default.example.com", name, 10)) == {1}
            assert {pod.metadata.name for pod in pods_of(core, f"{name}-predictor")} == pods
