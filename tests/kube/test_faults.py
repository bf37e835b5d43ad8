"""Faults on the client side, against ``timonel local``'s real API server.

The API server restarts while a waiter watches (it resumes from its resourceVersion), another
writer changes the object between our read and our update (409, retried on a fresh read), and a
request comes without the token (401, one clear error).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from localcluster import TOKEN, write_kubeconfig

from timonel.errors import ApiError
from timonel.kube import rollout
from timonel.kube.client import Cluster
from timonel.kube.requests import MERGE_PATCH, Request, get_object, merge_patch
from timonel.kube.resources import INFERENCE_SERVICE
from timonel.kube.wait import wait_ready
from timonel.local.apiserver.runner import Running, running

V1, V2 = "gs://models/half/v1", "gs://models/half/v2"


def manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "annotations": {"serving.kserve.io/deploymentMode": "Knative"},
        },
        "spec": {"predictor": {"model": {"modelFormat": {"name": "tensorflow"}, "storageUri": V1}}},
    }


def ready_status(obj: dict[str, Any], revision: str) -> dict[str, Any]:
    """What the controller writes once a revision serves all traffic."""
    return {
        "status": {
            "observedGeneration": obj["metadata"]["generation"],
            "conditions": [
                {"type": "PredictorReady", "status": "True"},
                {"type": "Ready", "status": "True"},
            ],
            "components": {
                "predictor": {
                    "latestCreatedRevision": revision,
                    "latestReadyRevision": revision,
                    "latestRolledoutRevision": revision,
                    "traffic": [{"latestRevision": True, "percent": 100, "revisionName": revision}],
                }
            },
        }
    }


class RecordingCluster(Cluster):
    """A Cluster that records the watches it opens."""

    watches: list[Request]
    watching: threading.Event

    def stream(self, request: Request, *, timeout: float) -> Iterator[dict[str, Any]]:
        self.watches.append(request)
        self.watching.set()
        return super().stream(request, timeout=timeout)


def write_status(cluster: Cluster, name: str, status: dict[str, Any]) -> None:
    request = merge_patch(INFERENCE_SERVICE, cluster.namespace, name, status)
    status_path = Request(**{**request.__dict__, "path": f"{request.path}/status"})
    cluster.send(status_path)


@pytest.mark.slow
def test_the_waiter_resumes_after_the_api_server_restarts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with running(state, TOKEN, tls=True) as first:
        port = first.port
        config = write_kubeconfig(tmp_path / "kubeconfig", first)
        cluster = RecordingCluster.connect(kubeconfig=config)
        cluster.watches, cluster.watching = [], threading.Event()
        written = rollout.deploy(manifest("half"), cluster=cluster, wait=False)
        outcome: dict[str, Any] = {}

        def wait() -> None:
            try:
                outcome["object"] = wait_ready(cluster, get(cluster, written.name), timeout=30)
            except Exception as exc:  # reported by the assertion below
                outcome["error"] = exc

        waiter = threading.Thread(target=wait)
        waiter.start()
        assert cluster.watching.wait(10)
    # the first server is gone, mid-watch; the same state comes back on the same port
    with running(state, TOKEN, port=port, tls=True):
        obj = get(cluster, "half")
        write_status(cluster, "half", ready_status(obj, "half-predictor-00001"))
        waiter.join(30)
    cluster.close()
    assert "error" not in outcome, outcome.get("error")
    assert outcome["object"]["status"]["observedGeneration"] == 1
    resumed = [dict(w.query).get("resourceVersion") for w in cluster.watches]
    assert len(resumed) >= 2 and all(resumed), resumed


def get(cluster: Cluster, name: str) -> dict[str, Any]:
    return cluster.send(get_object(INFERENCE_SERVICE, cluster.namespace, name))


class InterferingCluster(Cluster):
    """Another writer changes the object just before each of our first ``interfere`` updates."""

    interfere: int
    patches: list[dict[str, Any]]

    def send(self, request: Request, *, timeout: float = 30.0) -> dict[str, Any]:
        if request.content_type == MERGE_PATCH and request.name:
            self.patches.append(request.body)
            if self.interfere > 0:
                self.interfere -= 1
                label = {"metadata": {"labels": {"touched-by": f"other-{self.interfere}"}}}
                other = merge_patch(INFERENCE_SERVICE, request.namespace, request.name, label)
                super().send(other, timeout=timeout)
        return super().send(request, timeout=timeout)


def test_a_conflicting_update_is_retried_on_a_fresh_read(
    local_kubeconfig: Path,
) -> None:
    config = local_kubeconfig
    with InterferingCluster.connect(kubeconfig=config) as cluster:
        cluster.interfere, cluster.patches = 2, []
        rollout.deploy(manifest("conflicted"), cluster=cluster, wait=False)
        status = rollout.canary("conflicted", V2, 30, cluster=cluster, wait=False)
        assert status.storage_uri == V2 and status.canary_percent == 30
        versions = [p["metadata"]["resourceVersion"] for p in cluster.patches]
        assert len(versions) == 3 and len(set(versions)) == 3, versions
        labels = get(cluster, "conflicted")["metadata"]["labels"]
        assert labels == {"touched-by": "other-0"}, "the other writer's change is kept"


def test_a_request_without_the_token_is_one_clear_error(local_api: Running, tmp_path: Path) -> None:
    config = write_kubeconfig(tmp_path / "kubeconfig", local_api, token=None)
    with Cluster.connect(kubeconfig=config) as cluster, pytest.raises(ApiError) as caught:
        rollout.status("half", cluster=cluster)
    assert str(caught.value) == (
        f"the Kubernetes API at {local_api.url} refused the credentials of context local in "
        f"{config} (401 Unauthorized: Unauthorized); refresh the token in that kubeconfig (for "
        "the local cluster, `timonel local up` writes a fresh one)"
    )
    assert caught.value.status.code == 401
