"""Knative's KPA through the ingress: concurrent load starts a second process, and the window
takes it away again, with no request lost.

The revision runs the stand-in classifier slowed to answer in 0.2 s, so a few concurrent clients
keep its concurrency above the target; every answer names the port of the process that gave it.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from kubernetes import client

from timonel.local.controller import Controller
from timonel.local.ingress.router import Ingress, RunningIngress, running
from timonel.local.reconcile import Phase
from timonel.local.revisions import RevisionKey

from .kubeapi import GROUP, PLURAL, VERSION
from .standin_server import PORT_HEADER, Behaviour, write_classifier
from .test_controller import NAMESPACE, manifest, wait_for

pytestmark = pytest.mark.slow

NAME = "busy"
REVISION = RevisionKey(NAMESPACE, NAME, f"{NAME}-predictor-00001")
CLIENTS = 4
#: Knative's shortest stable window, so the scale-down comes within the test's time.
WINDOW = "6s"


@pytest.fixture(scope="module")
def ingress(local_controller: Controller) -> Iterator[RunningIngress]:
    router = Ingress(local_controller, timeout=20.0, machine_replicas=2)
    local_controller.listen(router.update, drain=router.activator.drain)
    with running(router) as served:
        yield served


def ready_processes(controller: Controller) -> int:
    return sum(1 for s in controller.revision_replicas(REVISION) if s.phase is Phase.READY)


def test_load_starts_a_second_process_spreads_over_both_and_the_window_ends_it(
    kube_client: client.ApiClient,
    ingress: RunningIngress,
    local_controller: Controller,
    tmp_path: Path,
) -> None:
    api = client.CustomObjectsApi(kube_client)
    model = write_classifier(tmp_path / "busy", Behaviour(delay=0.2))
    body = manifest(
        NAME,
        str(model),
        minReplicas=1,
        maxReplicas=2,
        scaleMetric="concurrency",
        scaleTarget=1,
    )
    body["metadata"]["annotations"]["autoscaling.knative.dev/window"] = WINDOW
    api.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    wait_for(api, NAME, lambda i: ready_processes(local_controller) == 1)
    codes: Counter[int] = Counter()
    ports: Counter[str] = Counter()
    lock = threading.Lock()
    stop = threading.Event()

    def client_loop(http: httpx.Client, limit: int, pause: float = 0.0) -> None:
        for _ in range(limit):
            if stop.wait(pause):
                return
            reply = http.post(
                f"/v1/models/{NAME}:predict",
                json={"instances": [[0.5]]},
                headers={"Host": f"{NAME}.{NAMESPACE}.example.com"},
            )
            with lock:
                codes[reply.status_code] += 1
                ports[reply.headers.get(PORT_HEADER, "")] += 1

    with httpx.Client(
        base_url=ingress.url, timeout=30, limits=httpx.Limits(max_connections=CLIENTS)
    ) as http:
        with ThreadPoolExecutor(CLIENTS) as pool:
            loads = [pool.submit(client_loop, http, 200) for _ in range(CLIENTS)]
            deadline = time.monotonic() + 30
            while ready_processes(local_controller) < 2:
                assert time.monotonic() < deadline, "no second process under load"
                time.sleep(0.1)
            pods = client.CoreV1Api(kube_client).list_namespaced_pod(
                NAMESPACE,
                label_selector=f"serving.knative.dev/revision={REVISION.revision}",
                _preload_content=False,
            )
            assert len(json.loads(pods.data)["items"]) == 2
            while (
                replicas := api.get_namespaced_custom_object(
                    "serving.knative.dev", "v1", NAMESPACE, "revisions", REVISION.revision
                ).get("status", {})
            ).get("actualReplicas") != 2:
                assert time.monotonic() < deadline, replicas
                time.sleep(0.1)
            assert replicas["desiredReplicas"] == 2
            while (
                copies := api.get_namespaced_custom_object(
                    "serving.kserve.io", "v1beta1", NAMESPACE, "inferenceservices", REVISION.isvc
                )["status"]["modelStatus"]["copies"]
            ).get("totalCopies") != 2:  # KServe counts the latest revision's ready pods
                assert time.monotonic() < deadline, copies
                time.sleep(0.1)
            with lock:
                before = Counter(ports)
            time.sleep(3)  # both processes under load
            stop.set()
            for load in loads:
                load.result(timeout=30)
        spread = Counter(ports) - before
        assert len([port for port, count in spread.items() if count >= 5]) == 2, spread

        # One client keeps sending, below the target (0.2 s answers every 0.5 s: a concurrency
        # of 0.4 against 70% of 1), while the window passes and the extra process is drained
        # and stopped.
        stop.clear()
        with ThreadPoolExecutor(1) as pool:
            trickle = pool.submit(client_loop, http, 200, 0.3)
            deadline = time.monotonic() + 40
            while len(local_controller.revision_replicas(REVISION)) > 1:
                assert time.monotonic() < deadline, "the second process outlived the window"
                time.sleep(0.2)
            time.sleep(1)
            stop.set()
            trickle.result(timeout=30)
    assert set(codes) == {200}, codes
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, NAME)
