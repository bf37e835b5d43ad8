"""Where a client reaches an InferenceService: its status.url, through the ingress gateway."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from timonel.errors import ServingError
from timonel.kube.client import Cluster
from timonel.kube.endpoints import Endpoint, endpoint_of, find_gateway, gateway_address

SPLIT = {
    "metadata": {"name": "half"},
    "status": {
        "url": "http://half.default.example.com",
        "components": {
            "predictor": {
                "traffic": [
                    {"revisionName": "half-predictor-00002", "percent": 30, "latestRevision": True},
                    {
                        "revisionName": "half-predictor-00001",
                        "percent": 70,
                        "tag": "prev",
                        "url": "http://prev-half-predictor.default.example.com",
                    },
                ]
            }
        },
    },
}


@pytest.mark.parametrize(
    ("revision", "gateway", "expected"),
    [
        (None, None, Endpoint("http://half.default.example.com", "half.default.example.com:80")),
        (
            None,
            "http://127.0.0.1:8080",
            Endpoint("http://127.0.0.1:8080", "127.0.0.1:8080", "half.default.example.com"),
        ),
        (
            "half-predictor-00001",
            "34.1.2.3",
            Endpoint("http://34.1.2.3", "34.1.2.3:80", "prev-half-predictor.default.example.com"),
        ),
        # A revision without a tag of its own is reached through the InferenceService's split.
        (
            "half-predictor-00002",
            "http://127.0.0.1:8080",
            Endpoint("http://127.0.0.1:8080", "127.0.0.1:8080", "half.default.example.com"),
        ),
    ],
)
def test_endpoint_of_the_status_url_through_the_gateway(
    revision: str | None, gateway: str | None, expected: Endpoint
) -> None:
    assert endpoint_of(SPLIT, revision=revision, gateway=gateway) == expected


def test_no_url_yet_says_to_wait() -> None:
    with pytest.raises(ServingError, match="inferenceservice half has no URL yet; wait until"):
        endpoint_of({"metadata": {"name": "half"}, "status": {}})


@pytest.mark.parametrize(
    ("service", "expected"),
    [
        (
            {
                "spec": {
                    "ports": [{"name": "status-port", "port": 15021}, {"name": "http2", "port": 80}]
                },
                "status": {"loadBalancer": {"ingress": [{"ip": "34.1.2.3"}]}},
            },
            "http://34.1.2.3:80",
        ),
        (
            {"status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.net"}]}}},
            "http://lb.example.net:80",
        ),
        ({"spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}}, None),
    ],
)
def test_the_istio_gateway_address_as_kserve_documents_it(
    service: dict[str, Any], expected: str | None
) -> None:
    assert gateway_address(service) == expected


@pytest.mark.slow
def test_timonel_local_ingress_is_discovered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("TIMONEL_LOCAL_HOME", str(tmp_path))

    def local(*args: str) -> None:
        command = [sys.executable, "-m", "timonel", "local", *args]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    local("up", "--ingress-port", str(port))
    try:
        with Cluster.connect(kubeconfig=tmp_path / "kubeconfig") as cluster:
            assert find_gateway(cluster) == f"http://127.0.0.1:{port}"
    finally:
        local("down")
