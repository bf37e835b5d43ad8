"""kubectl's pod columns as kube-apiserver's printPod computes them, one case per branch of its
rules (``pkg/printers/internalversion/printers.go``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from timonel.kube.resources import POD
from timonel.local.apiserver.tables import pod_row, table

NOW = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
CREATED = "2026-12-02T11:55:00Z"  # five minutes before NOW


def server(state: dict[str, Any], *, ready: bool, restarts: int, **last: Any) -> dict[str, Any]:
    """kserve-container's status; ``last``: its last run's end (``lastState.terminated``)."""
    status: dict[str, Any] = {
        "name": "kserve-container",
        "ready": ready,
        "restartCount": restarts,
        "state": state,
    }
    if last:
        status["lastState"] = {"terminated": last}
    return status


def running(ready: bool = True, restarts: int = 0, **last: Any) -> dict[str, Any]:
    return server({"running": {"startedAt": CREATED}}, ready=ready, restarts=restarts, **last)


def waiting(reason: str, restarts: int = 0, **last: Any) -> dict[str, Any]:
    return server({"waiting": {"reason": reason}}, ready=False, restarts=restarts, **last)


def init(state: dict[str, Any], restarts: int = 0) -> dict[str, Any]:
    return {"name": "storage-initializer", "restartCount": restarts, "state": state}


INIT_DONE = init({"terminated": {"exitCode": 0, "reason": "Completed"}})


def initializing(state: dict[str, Any], restarts: int = 0) -> dict[str, Any]:
    """A pod whose storage initializer is in ``state``: the server waits for it."""
    return pod(
        phase="Pending",
        inits=[init(state, restarts)],
        containers=[waiting("PodInitializing")],
        initialized=False,
        ready=False,
    )


def pod(
    *,
    phase: str = "Running",
    inits: list[dict[str, Any]] | None = None,
    containers: list[dict[str, Any]] | None = None,
    initialized: bool = True,
    ready: bool = True,
    deleting: bool = False,
    reason: str | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": "digits-predictor-00001-deployment-x",
        "creationTimestamp": CREATED,
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-02T11:59:50Z"
    status: dict[str, Any] = {
        "phase": phase,
        "conditions": [
            {"type": "Initialized", "status": "True" if initialized else "False"},
            {"type": "Ready", "status": "True" if ready else "False"},
        ],
        "initContainerStatuses": [INIT_DONE] if inits is None else inits,
        "containerStatuses": [running()] if containers is None else containers,
    }
    if reason:
        status["reason"] = reason
    return {
        "metadata": metadata,
        "spec": {
            "initContainers": [{"name": "storage-initializer"}],
            "containers": [{"name": "kserve-container"}],
            "nodeName": "timonel-local",
        },
        "status": status,
    }


@pytest.mark.parametrize(
    ("obj", "ready", "status", "restarts"),
    [
        (pod(), "1/1", "Running", "0"),
        (
            pod(
                containers=[
                    waiting("CrashLoopBackOff", 3, exitCode=1, finishedAt="2026-12-02T11:59:20Z")
                ],
                ready=False,
            ),
            "0/1",
            "CrashLoopBackOff",
            "3 (40s ago)",
        ),
        (
            initializing({"running": {}}),
            "0/1",
            "Init:0/1",
            "0",
        ),
        (
            initializing({"waiting": {"reason": "PodInitializing"}}),
            "0/1",
            "Init:0/1",
            "0",
        ),
        (
            initializing({"terminated": {"exitCode": 1, "reason": "Error"}}, 1),
            "0/1",
            "Init:Error",
            "1",
        ),
        (
            initializing({"waiting": {"reason": "CrashLoopBackOff"}}, 2),
            "0/1",
            "Init:CrashLoopBackOff",
            "2",
        ),
        (
            initializing({"terminated": {"exitCode": 2}}),
            "0/1",
            "Init:ExitCode:2",
            "0",
        ),
        (
            initializing({"terminated": {"exitCode": 137, "signal": 9}}),
            "0/1",
            "Init:Signal:9",
            "0",
        ),
        (
            pod(
                phase="Succeeded",
                containers=[
                    {
                        "name": "kserve-container",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                    }
                ],
                ready=False,
            ),
            "0/1",
            "Completed",
            "0",
        ),
        (
            pod(
                containers=[
                    {
                        "name": "kserve-container",
                        "ready": False,
                        "restartCount": 0,
                        "state": {"terminated": {"exitCode": 143}},
                    }
                ],
                ready=False,
            ),
            "0/1",
            "ExitCode:143",
            "0",
        ),
        (pod(deleting=True), "1/1", "Terminating", "0"),
        (pod(deleting=True, reason="NodeLost"), "1/1", "Unknown", "0"),
        (pod(phase="Failed", reason="Evicted", containers=[]), "0/1", "Evicted", "0"),
    ],
)
def test_the_row_kubectl_shows(obj: dict[str, Any], ready: str, status: str, restarts: str) -> None:
    cells = pod_row(obj, NOW)["cells"]
    assert cells[:5] == [obj["metadata"]["name"], ready, status, restarts, "5m"]


def test_a_completed_container_beside_a_running_one_reads_running_or_not_ready() -> None:
    completed = {
        "name": "sidecar",
        "ready": False,
        "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
    }
    both = pod(containers=[running(), completed])
    both["spec"]["containers"].append({"name": "sidecar"})
    assert pod_row(both, NOW)["cells"][1:3] == ["1/2", "Running"]
    both["status"]["conditions"][1]["status"] = "False"
    assert pod_row(both, NOW)["cells"][1:3] == ["1/2", "NotReady"]


def test_a_restartable_init_container_counts_as_a_container() -> None:
    sidecar = pod(inits=[{**init({"running": {}}), "started": True, "ready": True}])
    sidecar["spec"]["initContainers"][0]["restartPolicy"] = "Always"
    assert pod_row(sidecar, NOW)["cells"][1:3] == ["2/2", "Running"]


def test_the_wide_columns_and_the_row_of_a_finished_pod() -> None:
    obj = pod()
    obj["status"]["podIPs"] = [{"ip": "127.0.0.1"}]
    assert pod_row(obj, NOW)["cells"][5:] == ["127.0.0.1", "timonel-local", "<none>", "<none>"]
    assert "conditions" not in pod_row(obj, NOW)
    done = pod(phase="Succeeded")
    assert pod_row(done, NOW)["conditions"] == [
        {
            "type": "Completed",
            "status": "True",
            "reason": "Succeeded",
            "message": "The pod has completed successfully.",
        }
    ]


def test_the_pod_table_has_print_pod_s_columns() -> None:
    got = table(POD, [pod()], "7")
    names = [(c["name"], c["priority"]) for c in got["columnDefinitions"]]
    assert names == [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ]
    assert got["rows"][0]["object"]["metadata"]["name"] == pod()["metadata"]["name"]
