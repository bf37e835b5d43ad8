"""The lifecycle on a real cluster with KServe: ``pytest -m cluster``.

Runs only when ``TIMONEL_E2E_KUBECONFIG`` names a kubeconfig (skipped with that reason
otherwise). Optional: ``TIMONEL_E2E_CONTEXT``, ``TIMONEL_E2E_NAMESPACE`` (default: the context's),
and ``TIMONEL_E2E_STORAGE_URI_V1`` / ``_V2``: two TensorFlow models the cluster can read (default:
KServe's public flowers examples on gs://). Each run uses a fresh InferenceService name and
deletes it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

import timonel
from timonel.kube.client import Cluster

pytestmark = pytest.mark.cluster

#: A real cluster may have to pull the TF Serving image and scale up a node first.
READY_TIMEOUT = 900.0

V1 = os.environ.get(
    "TIMONEL_E2E_STORAGE_URI_V1", "gs://kfserving-examples/models/tensorflow/flowers"
)
V2 = os.environ.get(
    "TIMONEL_E2E_STORAGE_URI_V2", "gs://kfserving-examples/models/tensorflow/flowers-2"
)


@pytest.fixture(scope="module")
def cluster(e2e_kubeconfig: Path) -> Iterator[Cluster]:
    with Cluster.connect(
        kubeconfig=e2e_kubeconfig,
        context=os.environ.get("TIMONEL_E2E_CONTEXT"),
        namespace=os.environ.get("TIMONEL_E2E_NAMESPACE"),
    ) as connected:
        yield connected


@pytest.fixture
def name(cluster: Cluster) -> Iterator[str]:
    fresh = f"timonel-e2e-{secrets.token_hex(3)}"
    yield fresh
    try:
        timonel.delete(fresh, cluster=cluster, wait=True, timeout=300)
    except timonel.ApiError as exc:
        if exc.status.code != 404:
            raise


def spec(name: str, namespace: str, uri: str) -> timonel.ServingSpec:
    return timonel.ServingSpec(
        model=timonel.Model(name=name, storage_uri=uri), namespace=namespace, tag_routing=True
    )


def test_deploy_canary_promote_rollback_delete(cluster: Cluster, name: str) -> None:
    kw = {"cluster": cluster, "timeout": READY_TIMEOUT}
    deployed = timonel.deploy(spec(name, cluster.namespace, V1), **kw)
    assert deployed.ready and deployed.url
    assert deployed.observed_generation >= deployed.generation

    canary = timonel.canary(name, V2, 30, **kw)
    assert canary.ready
    assert sorted((t.tag, t.percent) for t in canary.traffic) == [("latest", 30), ("prev", 70)]

    promoted = timonel.promote(name, **kw)
    assert [t.percent for t in promoted.traffic] == [100]
    assert promoted.previous_rolledout_revision

    rolled_back = timonel.rollback(name, **kw)
    assert rolled_back.ready and rolled_back.storage_uri == V1

    timonel.delete(name, cluster=cluster, wait=True, timeout=300)
    assert name not in {s.name for s in timonel.list_services(cluster=cluster)}


def test_the_webhook_refusal_reads_as_one_error(cluster: Cluster, name: str) -> None:
    manifest = timonel.render(spec(name, cluster.namespace, V1))
    manifest["spec"]["predictor"]["minReplicas"] = -1
    with pytest.raises(timonel.ApiError) as caught:
        timonel.deploy(manifest, cluster=cluster, dry_run=True)
    assert caught.value.status.code in (400, 403, 422)
    text = str(caught.value)
    assert "minreplicas" in text.lower() and text.endswith("and try again")
    assert "RBAC" not in text and "Role rule" not in text
