"""Standard mode on the real ``timonel serve``: a Deployment's pods run TensorFlow, and the
ingress weights a canary's Deployment beside the stable one, over REST and gRPC.

Slow: every pod is a TensorFlow process. ``test_workloads.py`` covers the same objects and
status with a stand-in server.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from kubernetes import client

import timonel
from timonel.kube.client import Cluster
from timonel.local.controller import Controller

from . import test_controller_serve
from .kubeapi import GROUP, PLURAL, VERSION
from .test_controller import NAMESPACE, condition, manifest, predict, wait_for
from .test_controller_serve import SERVE_TIMEOUT, grpc_predict

pytestmark = pytest.mark.slow

api, ingress = test_controller_serve.api, test_controller_serve.ingress
models, releases = test_controller_serve.models, test_controller_serve.releases


def test_a_standard_canary_on_timonel_serve(
    api: client.CustomObjectsApi,
    serving_controller: Controller,
    ingress: str,
    releases: dict[str, str],
    local_kubeconfig: Path,
) -> None:
    name = "rawserved"
    body = manifest(name, releases["v1"])
    body["metadata"]["annotations"] = {"serving.kserve.io/deploymentMode": "Standard"}
    api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    deployed = wait_for(
        api, name, lambda i: condition(i, "Ready").get("status") == "True", SERVE_TIMEOUT
    )
    assert deployed["status"]["url"] == f"http://{name}-default.example.com"
    assert predict(ingress, deployed) == [2.5]
    assert grpc_predict(ingress, deployed, None, [1.0, 2.0]) == [2.5, 3.0]

    with Cluster.connect(kubeconfig=local_kubeconfig) as cluster:
        timonel.canary(name, releases["v2"], 30, cluster=cluster, timeout=SERVE_TIMEOUT)
        split = wait_for(api, name, lambda i: bool(i["status"].get("canaryStatuses")))
        answers = Counter(grpc_predict(ingress, split, None, [1.0], calls=100))
        assert set(answers) == {2.5, 3.5} and answers[3.5] >= 10, answers
        timonel.promote(name, cluster=cluster, timeout=SERVE_TIMEOUT)
    promoted = wait_for(api, name, lambda i: "canaryStatuses" not in i["status"])
    assert {predict(ingress, promoted)[0] for _ in range(10)} == {3.5}
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
