"""The whole lifecycle through ``timonel``'s Python API on ``timonel local``, with real models.

The API server speaks HTTPS with a bearer token, as ``timonel local up`` runs it; the controller
runs one real ``timonel serve`` per revision, and every prediction goes through the ingress to the
URL of a revision's traffic tag (tag routing is on), so each step shows which model answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tfmodels

import timonel
from timonel.kube.client import Cluster
from timonel.local.controller import Controller
from timonel.local.ingress.router import Ingress, running

pytestmark = pytest.mark.slow

#: A TensorFlow process starts in seconds, slower when the machine is busy.
SERVE_TIMEOUT = 120.0
NAME = "half"
V1_ANSWERS, V2_ANSWERS = [2.5, 3.0], [3.5, 4.0]  # 0.5x+2 and 0.5x+3 at x = 1, 2


@pytest.fixture(scope="module")
def cluster(local_kubeconfig: Path) -> Iterator[Cluster]:
    with Cluster.connect(kubeconfig=local_kubeconfig) as connected:
        yield connected


@pytest.fixture(scope="module")
def gateway(serving_controller: Controller) -> Iterator[str]:
    """The ingress in front of the controller's revisions."""
    router = Ingress(serving_controller)
    serving_controller.listen(router.update)
    with running(router) as served:
        yield served.url


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """half_plus_two published as releases v1 (0.5x+2) and v2 (0.5x+3) in a file:// repository."""
    from timonel.releases.package import package

    models = tmp_path_factory.mktemp("savedmodels")
    repo = tmp_path_factory.mktemp("repo")
    return {
        f"v{version}": package(
            tfmodels.write_half_plus_two(models / f"v{version}", offset=offset),
            name=NAME,
            repo=f"file://{repo}",
            version=version,
        ).uri
        for version, offset in ((1, 2.0), (2, 3.0))
    }


def predict(cluster: Cluster, gateway: str, revision: str) -> list[float]:
    """Ask one revision by its tag's URL through the ingress: which model answers there."""
    where = timonel.find_endpoint(NAME, cluster=cluster, revision=revision, gateway=gateway)
    with timonel.Client(where.rest, host=where.host) as client:
        reply = client.predict_json(NAME, {"instances": [1.0, 2.0]})
    return [float(v) for v in reply["predictions"]]


def split(status: timonel.ServiceStatus) -> list[tuple[str, int, str | None]]:
    return [(t.revision, t.percent, t.tag) for t in status.traffic]


def test_deploy_canary_rollback_promote_rollback_delete(
    cluster: Cluster, gateway: str, releases: dict[str, str]
) -> None:
    r1, r2, r3 = (f"{NAME}-predictor-0000{n}" for n in (1, 2, 3))
    spec = timonel.ServingSpec(
        model=timonel.Model(name=NAME, storage_uri=releases["v1"]), tag_routing=True
    )
    kw: dict[str, Any] = {"cluster": cluster, "timeout": SERVE_TIMEOUT}

    deployed = timonel.deploy(spec, **kw)
    assert deployed.ready and deployed.storage_uri == releases["v1"]
    assert deployed.observed_generation == deployed.generation == 1
    assert deployed.url == f"http://{NAME}.default.example.com"
    assert split(deployed) == [(r1, 100, "latest")]
    assert predict(cluster, gateway, r1) == V1_ANSWERS

    again = timonel.deploy(spec, **kw)
    assert again.generation == 1, "re-applying the same spec changes nothing"

    canary = timonel.canary(NAME, releases["v2"], 30, **kw)
    assert canary.ready and canary.canary_percent == 30
    assert split(canary) == [(r2, 30, "latest"), (r1, 70, "prev")]
    assert (predict(cluster, gateway, r1), predict(cluster, gateway, r2)) == (
        V1_ANSWERS,
        V2_ANSWERS,
    )

    stopped = timonel.rollback(NAME, **kw)
    assert stopped.canary_percent == 0
    assert split(stopped) == [(r2, 0, "latest"), (r1, 100, "prev")]

    resumed = timonel.canary(NAME, releases["v2"], 30, **kw)
    assert split(resumed) == [(r2, 30, "latest"), (r1, 70, "prev")]

    promoted = timonel.promote(NAME, **kw)
    assert promoted.ready and promoted.canary_percent is None
    assert split(promoted) == [(r2, 100, "latest")]
    assert (promoted.latest_rolledout_revision, promoted.previous_rolledout_revision) == (r2, r1)
    assert predict(cluster, gateway, r2) == V2_ANSWERS

    rolled_back = timonel.rollback(NAME, **kw)
    assert rolled_back.ready and rolled_back.storage_uri == releases["v1"]
    assert split(rolled_back) == [(r3, 100, "latest")]
    assert predict(cluster, gateway, r3) == V1_ANSWERS

    timonel.delete(NAME, cluster=cluster, wait=True, timeout=60)
    assert timonel.list_services(cluster=cluster) == []
