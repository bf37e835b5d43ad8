"""Fixtures of the rollout tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from local.standin_server import standin_command

from rollouts.fakeclock import FakeClock
from rollouts.localrollouts import LocalCluster


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def toy_cluster(
    local_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalCluster]:
    """``timonel local`` (API server, controller, ingress) whose revisions run the toy server."""
    from timonel.kube.client import Cluster
    from timonel.local.controller import Controller
    from timonel.local.ingress.router import Ingress, running
    from timonel.local.supervisor import Backoff

    with Cluster.connect(kubeconfig=local_kubeconfig) as api:
        controller = Controller(
            api,
            tmp_path_factory.mktemp("state"),
            command=standin_command,
            backoff=Backoff(initial=0.1, cap=1.0),
            watch_timeout=5,
        )
        controller.start()
        try:
            router = Ingress(controller, idle_seconds=600.0, timeout=20.0)
            controller.listen(router.update, drain=router.activator.drain)
            with running(router) as served:
                yield LocalCluster(
                    api, served, tmp_path_factory.mktemp("releases"), local_kubeconfig
                )
        finally:
            controller.stop()
