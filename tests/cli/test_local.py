"""``timonel local up|down|status`` for real: a background daemon, its kubeconfig, restarts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes import config as kube_config

pytestmark = pytest.mark.slow

ISVC = {
    "apiVersion": "serving.kserve.io/v1beta1",
    "kind": "InferenceService",
    "metadata": {"name": "kept"},
    "spec": {
        "predictor": {
            "model": {"modelFormat": {"name": "tensorflow"}, "storageUri": "/nonexistent/m/v1"}
        }
    },
}


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A local cluster home; whatever daemon a test leaves running is stopped afterwards."""
    yield tmp_path
    timonel(tmp_path, "local", "down")


def timonel(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TIMONEL_LOCAL_HOME": str(home), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "timonel", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def daemon(home: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((home / "daemon.json").read_text())
    return data


def test_up_is_idempotent_status_reports_and_down_stops(home: Path) -> None:
    started = timonel(home, "local", "up", "--ingress-port", "18080")
    assert started.returncode == 0, started.stderr
    url = daemon(home)["url"]
    assert started.stdout.splitlines() == [
        f"local cluster running at {url}",
        f"kubeconfig: {home / 'kubeconfig'}",
        f"use it:     export KUBECONFIG={home / 'kubeconfig'}",
    ]
    pid = daemon(home)["pid"]
    again = timonel(home, "local", "up")
    assert again.returncode == 0, again.stderr
    assert daemon(home)["pid"] == pid

    status = timonel(home, "local", "status")
    assert status.returncode == 0
    assert "running" in status.stdout
    assert f"{url} (pid {pid}" in status.stdout
    assert "port 18080 kept for the router" in status.stdout

    clash = timonel(home, "local", "up", "--ingress-port", "18081")
    assert clash.returncode == 2
    assert clash.stderr.strip() == (
        "error: the local cluster already runs with --ingress-port 18080; to use --ingress-port "
        "18081, run `timonel local down` first, then `timonel local up --ingress-port 18081`"
    )

    stopped = timonel(home, "local", "down")
    assert stopped.stdout.strip() == "local cluster stopped"
    assert not (home / "daemon.json").exists()
    assert "stopped" in timonel(home, "local", "status").stdout
    assert timonel(home, "local", "down").stdout.strip() == "local cluster was not running"


def test_a_restart_keeps_objects_port_and_kubeconfig(home: Path) -> None:
    assert timonel(home, "local", "up").returncode == 0
    clash = timonel(home, "local", "up", "--ingress-port", "18081")
    assert clash.returncode == 2
    assert clash.stderr.strip() == (
        "error: the local cluster already runs with --ingress-port 8080; to use --ingress-port "
        "18081, run `timonel local down` first, then `timonel local up --ingress-port 18081`"
    )
    kubeconfig = home / "kubeconfig"
    first = kubeconfig.read_text()
    with kube_config.new_client_from_config(str(kubeconfig), context="timonel-local") as api_client:
        api = client.CustomObjectsApi(api_client)
        created = api.create_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", "default", "inferenceservices", ISVC
        )
    assert timonel(home, "local", "down").returncode == 0
    assert timonel(home, "local", "up").returncode == 0
    assert kubeconfig.read_text() == first
    with kube_config.new_client_from_config(str(kubeconfig), context="timonel-local") as api_client:
        fetched = client.CustomObjectsApi(api_client).get_namespaced_custom_object(
            "serving.kserve.io", "v1beta1", "default", "inferenceservices", "kept"
        )
    assert fetched["metadata"]["uid"] == created["metadata"]["uid"]
    assert int(fetched["metadata"]["resourceVersion"]) >= int(
        created["metadata"]["resourceVersion"]
    )


def test_a_busy_api_port_is_one_line_with_the_fix(home: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = timonel(home, "local", "up", "--api-port", str(port))
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: port {port} on 127.0.0.1 is in use (")
    assert result.stderr.strip().endswith("pass --api-port with a free port, or 0 to pick one")
