"""Rollouts on ``timonel local``: releases of the toy model, deploys, and live clients.

``LocalCluster`` is what the ``toy_cluster`` fixture gives: the API (``timonel.kube.Cluster``)
and its kubeconfig, the running ingress, and a folder of releases. ``LiveClients`` plays the
users of a service: a thread sending predict requests through the ingress to the service's own
host (so they follow the traffic split) and keeping every answer, bounded in count and time.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from local.standin_server import Behaviour, write_classifier

from rollouts.toyrevisions import probe_bodies
from timonel.kube.client import Cluster
from timonel.kube.records import read_record
from timonel.kube.requests import get_object
from timonel.kube.resources import INFERENCE_SERVICE
from timonel.local.ingress.router import RunningIngress

NAMESPACE = "default"
#: Instances the live clients send, one per request, cycling.
LIVE_INSTANCES = (0.1, 0.3, 0.7, 0.9)


def host(name: str) -> str:
    return f"{name}.{NAMESPACE}.example.com"


def probe_file(folder: Path) -> Path:
    """``probe_bodies`` as a probe-data file."""
    path = folder / "probes.json"
    path.write_text(json.dumps(probe_bodies()))
    return path


@dataclass
class LocalCluster:
    api: Cluster
    ingress: RunningIngress
    releases: Path
    kubeconfig: Path

    @property
    def gateway(self) -> str:
        return self.ingress.url

    def release(self, name: str, version: int, behaviour: Behaviour) -> str:
        """A release of the toy model with ``behaviour``; its storage URI."""
        return str(write_classifier(self.releases / name / f"v{version}", behaviour))

    def deploy(self, name: str, storage_uri: str) -> None:
        from timonel.kube.rollout import deploy

        manifest = {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "annotations": {"serving.kserve.io/deploymentMode": "Knative"},
            },
            "spec": {
                "predictor": {
                    "model": {"modelFormat": {"name": "tensorflow"}, "storageUri": storage_uri}
                }
            },
        }
        deploy(manifest, cluster=self.api, timeout=60)

    def read(self, name: str) -> dict[str, Any]:
        return self.api.send(get_object(INFERENCE_SERVICE, NAMESPACE, name))

    def record(self, name: str) -> dict[str, Any] | None:
        """The InferenceService's record (``timonel.kube.records``), if it has one."""
        return read_record(self.api, NAMESPACE, name)

    def storage_uri(self, name: str) -> str:
        return str(self.read(name)["spec"]["predictor"]["model"]["storageUri"])


@dataclass
class LiveClients:
    """Users of ``name`` through the ingress, one request every ``pause`` seconds, at most
    ``limit`` requests; ``answers`` holds (status, predictions or None) for each."""

    gateway: str
    name: str
    pause: float = 0.02
    limit: int = 3000
    answers: list[tuple[int, Any]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        with httpx.Client(base_url=self.gateway, timeout=10) as http:
            for index in range(self.limit):
                if self._stop.is_set():
                    return
                x = LIVE_INSTANCES[index % len(LIVE_INSTANCES)]
                try:
                    reply = http.post(
                        f"/v1/models/{self.name}:predict",
                        json={"instances": [[x]]},
                        headers={"Host": host(self.name)},
                    )
                    body = reply.json().get("predictions")
                    self.answers.append((reply.status_code, (x, body)))
                except httpx.HTTPError:
                    self.answers.append((0, (x, None)))
                time.sleep(self.pause)

    def __enter__(self) -> LiveClients:
        self._thread = threading.Thread(target=self._run, name="live clients", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
