"""Pods for revision processes, named and labelled as KServe's Knative mode does them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import localcluster
import pytest
from kubernetes import client

from timonel import cli
from timonel.kube.client import Cluster
from timonel.kube.requests import create_object
from timonel.local.apiserver import Running, running
from timonel.local.controller import Controller
from timonel.local.revisions import RevisionKey, RevisionStore

from .kubeapi import GROUP, PLURAL, VERSION
from .standin_server import standin_command, write_model
from .test_api_kubectl import KUBECTL, kubectl
from .test_controller import manifest, settled, wait_for, wait_until_reaped
from .test_supervisor import stalled_initializer

NAMESPACE = "default"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One state directory for the API server and the controller, as ``timonel local up`` has:
    the API server reads pods' logs from the controller's revision files."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def local_api(home: Path) -> Iterator[Running]:
    with running(home, localcluster.TOKEN, tls=True) as server:
        yield server


@pytest.fixture(scope="module")
def local_controller(local_kubeconfig: Path, home: Path) -> Iterator[Controller]:
    with localcluster.controller(local_kubeconfig, home) as started:
        yield started


@pytest.fixture(scope="module")
def api(kube_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_client)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_model(tmp_path_factory.mktemp("repo") / "half" / "v1", version=1)


def pods(config: Path, isvc: str) -> list[dict[str, Any]]:
    """``kubectl get pods -l serving.kserve.io/inferenceservice=ISVC -o json``'s items."""
    done = kubectl(
        config, "get", "pods", "-l", f"serving.kserve.io/inferenceservice={isvc}", "-o", "json"
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["items"])


def wait_for_pods(
    config: Path,
    isvc: str,
    check: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while not check(found := pods(config, isvc)):
        assert time.monotonic() < deadline, f"timed out; the pods: {found}"
        time.sleep(0.1)
    return found


def server(pod: dict[str, Any]) -> dict[str, Any]:
    return dict(pod["status"]["containerStatuses"][0])


def ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])
    )


def serving_pod(
    api: client.CustomObjectsApi, config: Path, name: str, model: Path
) -> dict[str, Any]:
    """The ready pod of a new InferenceService ``name`` serving ``model``."""
    api.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, str(model))
    )
    wait_for(api, name, settled)
    [pod] = wait_for_pods(config, name, lambda found: len(found) == 1 and ready(found[0]))
    return pod


def test_a_ready_revision_has_a_running_pod_named_and_labelled_as_knative_does(
    api: client.CustomObjectsApi,
    local_controller: Controller,
    local_kubeconfig: Path,
    model: Path,
) -> None:
    name = "podded"
    revision = f"{name}-predictor-00001"
    pod = serving_pod(api, local_kubeconfig, name, model)

    assert pod["metadata"]["name"].startswith(f"{revision}-deployment-")
    labels = pod["metadata"]["labels"]
    assert labels["serving.kserve.io/inferenceservice"] == name
    assert labels["serving.knative.dev/revision"] == revision
    assert labels["serving.knative.dev/service"] == f"{name}-predictor"
    assert labels["component"] == "predictor"
    assert [c["name"] for c in pod["spec"]["containers"]] == ["kserve-container"]
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["storage-initializer"]
    assert pod["spec"]["initContainers"][0]["args"] == [str(model), "/mnt/models"]
    assert pod["status"]["phase"] == "Running"
    assert server(pod)["restartCount"] == 0
    assert "running" in server(pod)["state"]
    init = pod["status"]["initContainerStatuses"][0]
    assert init["state"]["terminated"]["reason"] == "Completed"

    table = kubectl(
        local_kubeconfig, "get", "pods", "-l", f"serving.kserve.io/inferenceservice={name}"
    )
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert row.split()[:4] == [pod["metadata"]["name"], "1/1", "Running", "0"]

    described = kubectl(local_kubeconfig, "describe", "pod", pod["metadata"]["name"])
    assert described.returncode == 0, described.stderr
    lines = {
        " ".join(line.replace("Labels:", "").split()) for line in described.stdout.splitlines()
    }
    for line in (
        "Status: Running",
        f"Controlled By: ReplicaSet/{revision}-deployment-{labels['pod-template-hash']}",
        "Init Containers:",
        "storage-initializer:",
        "Reason: Completed",
        "kserve-container:",
        "Restart Count: 0",
        f"serving.knative.dev/revision={revision}",
        "Ready True",
    ):
        assert line in lines, described.stdout


def test_a_crashed_process_counts_a_restart_with_its_last_state(
    api: client.CustomObjectsApi,
    local_controller: Controller,
    local_kubeconfig: Path,
    model: Path,
) -> None:
    name = "crashing"
    revision = f"{name}-predictor-00001"
    api.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, str(model))
    )
    wait_for(api, name, settled)
    pid = local_controller.revision_pid(NAMESPACE, name, revision)
    assert pid is not None

    os.kill(pid, signal.SIGKILL)

    [pod] = wait_for_pods(
        local_kubeconfig,
        name,
        lambda found: len(found) == 1 and server(found[0])["restartCount"] == 1 and ready(found[0]),
    )
    assert server(pod)["lastState"]["terminated"]["exitCode"] == 137


def test_deleting_the_inference_service_deletes_its_pods(
    api: client.CustomObjectsApi,
    local_controller: Controller,
    local_kubeconfig: Path,
    model: Path,
) -> None:
    name = "passing"
    api.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, str(model))
    )
    wait_for(api, name, settled)
    wait_for_pods(local_kubeconfig, name, lambda found: len(found) == 1)
    pid = local_controller.revision_pid(NAMESPACE, name, f"{name}-predictor-00001")
    assert pid is not None

    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)

    wait_for_pods(local_kubeconfig, name, lambda found: found == [])
    wait_until_reaped(pid, "the deleted InferenceService's process")


def test_kubectl_logs_reads_the_server_runs_as_the_kubelet_keeps_them(
    api: client.CustomObjectsApi,
    local_controller: Controller,
    local_kubeconfig: Path,
    model: Path,
) -> None:
    name = "logged"
    pod = serving_pod(api, local_kubeconfig, name, model)
    pod_name = pod["metadata"]["name"]

    first = kubectl(local_kubeconfig, "logs", pod_name, "-c", "kserve-container")
    assert first.returncode == 0, first.stderr
    [line] = first.stdout.splitlines()
    assert line.startswith(f"serving {name} version 1 on ")

    pid = local_controller.revision_pid(NAMESPACE, name, f"{name}-predictor-00001")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for_pods(
        local_kubeconfig,
        name,
        lambda found: len(found) == 1 and server(found[0])["restartCount"] == 1 and ready(found[0]),
    )

    previous = kubectl(local_kubeconfig, "logs", pod_name, "-c", "kserve-container", "--previous")
    assert previous.returncode == 0, previous.stderr
    assert previous.stdout == first.stdout
    current = kubectl(local_kubeconfig, "logs", pod_name, "-c", "kserve-container", "--tail", "1")
    assert current.returncode == 0, current.stderr
    assert current.stdout.startswith(f"serving {name} version 1 on ")
    assert current.stdout != first.stdout  # a new run, on a new port

    initializer = kubectl(local_kubeconfig, "logs", pod_name, "-c", "storage-initializer")
    assert initializer.returncode == 0, initializer.stderr
    sidecar = kubectl(local_kubeconfig, "logs", pod_name, "-c", "queue-proxy")
    assert sidecar.returncode != 0
    assert f"container queue-proxy is not valid for pod {pod_name}" in sidecar.stderr


def test_kubectl_delete_pod_restarts_the_process_in_a_new_pod(
    api: client.CustomObjectsApi,
    local_controller: Controller,
    local_kubeconfig: Path,
    model: Path,
) -> None:
    name = "replaced"
    revision = f"{name}-predictor-00001"
    old = serving_pod(api, local_kubeconfig, name, model)
    pid = local_controller.revision_pid(NAMESPACE, name, revision)
    assert pid is not None

    deleted = kubectl(local_kubeconfig, "delete", "pod", old["metadata"]["name"])
    assert deleted.returncode == 0, deleted.stderr

    [new] = wait_for_pods(
        local_kubeconfig,
        name,
        lambda found: (
            len(found) == 1
            and found[0]["metadata"]["name"] != old["metadata"]["name"]
            and ready(found[0])
        ),
    )
    assert new["metadata"]["labels"]["serving.knative.dev/revision"] == revision
    assert server(new)["restartCount"] == 0
    wait_until_reaped(pid, "the deleted pod's process")
    assert local_controller.revision_pid(NAMESPACE, name, revision) not in (None, pid)
    wait_for(api, name, settled)


def test_kubectl_logs_follow_sees_a_line_the_server_writes_later(
    api: client.CustomObjectsApi,
    local_controller: Controller,
    local_kubeconfig: Path,
    home: Path,
    model: Path,
) -> None:
    name = "followed"
    pod = serving_pod(api, local_kubeconfig, name, model)
    command = [KUBECTL, "--kubeconfig", str(local_kubeconfig), "logs", "-f"]
    command += [pod["metadata"]["name"], "-c", "kserve-container"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as follower:
        try:
            assert_sees_a_line_written_later(follower, home, name, "answered a request\n")
        finally:
            follower.kill()


def assert_sees_a_line_written_later(
    follower: subprocess.Popen[str], home: Path, name: str, line: str
) -> None:
    """The follower prints the server's start line, then ``line`` once it is appended to the
    revision's server log."""
    hang_guard = threading.Timer(60, follower.kill)  # a line that never comes ends the read
    hang_guard.start()
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline().startswith(f"serving {name} version 1 on ")
        revision = RevisionKey(NAMESPACE, name, f"{name}-predictor-00001")
        with open(RevisionStore(home).server_log(revision), "a", encoding="utf-8") as out:
            out.write(line)
        assert follower.stdout.readline() == line
    finally:
        hang_guard.cancel()


def status_column(config: Path, isvc: str) -> list[str]:
    """``kubectl get pods -l ...``'s rows, each as NAME READY STATUS RESTARTS (the age left out)."""
    done = kubectl(config, "get", "pods", "-l", f"serving.kserve.io/inferenceservice={isvc}")
    assert done.returncode == 0, done.stderr
    return [" ".join(line.split()[:-1]) for line in done.stdout.splitlines()[1:]]


def wait_for_status(config: Path, isvc: str, status: str, timeout: float = 30.0) -> str:
    """The first ``kubectl get pods`` row whose STATUS is ``status``."""
    deadline = time.monotonic() + timeout
    while True:
        rows = status_column(config, isvc)
        found = [row for row in rows if row.split()[2] == status]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"no pod of {isvc} became {status}: {rows}"
        time.sleep(0.1)


def test_kubectl_shows_a_model_that_fails_to_load_in_crash_loop_back_off(
    api: client.CustomObjectsApi,
    local_controller: Controller,
    local_kubeconfig: Path,
    tmp_path: Path,
) -> None:
    name = "unloadable"
    broken = write_model(tmp_path / "repo" / name, graph=b"corrupt: not a graph")
    api.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, str(broken))
    )

    row = wait_for_status(local_kubeconfig, name, "CrashLoopBackOff")

    pod_name, ready, _, restarts = row.split(" ", 3)
    assert pod_name.startswith(f"{name}-predictor-00001-deployment-")
    assert ready == "0/1"
    assert re.fullmatch(r"\d+ \(\w+ ago\)", restarts), row
    api.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def test_kubectl_shows_a_pod_whose_storage_initializer_runs_as_init_0_of_1(
    tmp_path: Path,
) -> None:
    name = "initializing"
    state = tmp_path / "home"
    with (
        running(state, localcluster.TOKEN, tls=True) as server,
        Cluster.connect(
            kubeconfig=localcluster.write_kubeconfig(tmp_path / "kube", server)
        ) as kube,
    ):
        config = tmp_path / "kube"
        stalled = Controller(
            kube, state, initializer=stalled_initializer, command=standin_command, watch_timeout=5
        )
        stalled.start()
        try:
            isvc = manifest(name, "gs://unreachable/m/v1")
            isvc["metadata"]["namespace"] = NAMESPACE
            kube.send(create_object(isvc))
            row = wait_for_status(config, name, "Init:0/1")
        finally:
            stalled.stop()
    assert row.split()[1:] == ["0/1", "Init:0/1", "0"]


def timonel_logs(config: Path, *args: str) -> subprocess.Popen[str]:
    """``timonel logs ARGS`` on the cluster of ``config``, its output read as it comes.

    It starts with SIGINT at its default, as from a terminal: a suite run as a background job of
    a script inherits SIGINT ignored, and so would the follower, which Ctrl-C then never ends.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "timonel", "logs", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KUBECONFIG": str(config)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.slow
def test_timonel_logs_follows_the_serving_pod_until_ctrl_c(
    api: client.CustomObjectsApi,
    local_controller: Controller,
    local_kubeconfig: Path,
    home: Path,
    model: Path,
) -> None:
    name = "tailed"
    serving_pod(api, local_kubeconfig, name, model)
    with timonel_logs(local_kubeconfig, name, "-f", "--tail", "1") as follower:
        try:
            assert_sees_a_line_written_later(
                follower, home, name, "answered a [bold]request[/bold]\n"
            )
            follower.send_signal(signal.SIGINT)
            assert follower.wait(timeout=20) == 0
            assert follower.stderr is not None and follower.stderr.read() == ""
        finally:
            follower.kill()


@pytest.mark.slow
def test_timonel_logs_follow_ends_with_the_pod(
    api: client.CustomObjectsApi,
    local_controller: Controller,
    local_kubeconfig: Path,
    model: Path,
) -> None:
    name = "ending"
    pod = serving_pod(api, local_kubeconfig, name, model)
    with timonel_logs(local_kubeconfig, name, "-f") as follower:
        try:
            assert follower.stdout is not None
            assert follower.stdout.readline().startswith(f"serving {name} version 1 on ")

            deleted = kubectl(local_kubeconfig, "delete", "pod", pod["metadata"]["name"])
            assert deleted.returncode == 0, deleted.stderr

            assert follower.wait(timeout=30) == 0
        finally:
            follower.kill()


def test_timonel_logs_reads_the_storage_initializer_and_names_missing_services(
    api: client.CustomObjectsApi,
    local_controller: Controller,
    local_kubeconfig: Path,
    model: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "initialized"
    serving_pod(api, local_kubeconfig, name, model)
    monkeypatch.setenv("KUBECONFIG", str(local_kubeconfig))

    code = cli.main(["logs", name, "-c", "storage-initializer"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out and str(model) in out

    code = cli.main(["logs", "nowhere"])
    _, err = capsys.readouterr()
    assert code == cli.EXIT_REFUSED
    assert "inferenceservice default/nowhere was not found in namespace default" in err
