"""The cluster plan: gcloud, helm and kubectl commands for a GKE cluster that serves."""

from __future__ import annotations

import re

import pytest

from timonel.errors import SpecError
from timonel.gke.plan import plan_cluster
from timonel.spec import Accelerator


def test_plan_creates_a_gpu_pool_that_starts_at_zero_with_workload_identity() -> None:
    plan = plan_cluster(
        "serve",
        "us-central1",
        Accelerator("nvidia-l4", count=2, spot=True),
        project="acme",
        max_nodes=4,
    )
    text = plan.render()
    assert "gcloud container clusters create serve" in text
    assert "--workload-pool=acme.svc.id.goog" in text
    assert "gcloud container node-pools create gpu-l4" in text
    assert "--machine-type=g2-standard-24" in text
    assert "--accelerator=type=nvidia-l4,count=2,gpu-driver-version=default" in text
    assert "--num-nodes=0" in text and "--min-nodes=0" in text and "--max-nodes=4" in text
    assert "--workload-metadata=GKE_METADATA" in text
    assert "--spot" in text
    assert "helm install kserve oci://ghcr.io/kserve/charts/kserve" in text
    assert "timonel kserve manifests runtime | kubectl apply -f -" in text
    assert "GPU quota must cover max nodes x GPUs per node (8)" in text


def test_plan_writes_sharing_and_mig_into_the_accelerator_flag() -> None:
    shared = plan_cluster(
        "c", "us-east1", Accelerator("nvidia-tesla-t4", sharing="mps", max_shared_clients=4)
    ).render()
    assert "gpu-sharing-strategy=mps,max-shared-clients-per-gpu=4" in shared
    mig = plan_cluster(
        "c", "us-east1", Accelerator("nvidia-a100-80gb", mig_partition="2g.20gb")
    ).render()
    assert "gpu-partition-size=2g.20gb" in mig
    assert "--machine-type=a2-ultragpu-1g" in mig


def test_plan_for_autopilot_needs_no_node_pool() -> None:
    text = plan_cluster("auto", "europe-west4", Accelerator("nvidia-l4", autopilot=True)).render()
    assert "gcloud container clusters create-auto auto" in text
    assert "node-pools" not in text


def test_plan_refuses_inverted_node_bounds() -> None:
    with pytest.raises(SpecError, match="expected 0 <= min <= max and max >= 1"):
        plan_cluster("c", "us-east1", Accelerator("nvidia-l4"), min_nodes=3, max_nodes=1)


@pytest.mark.parametrize(
    ("cluster", "location", "message"),
    [
        ("C_1", "us-east1", "--cluster 'C_1': GKE cluster names are lower case letters"),
        ("c" * 41, "us-east1", "have at most 40 characters"),
        ("serve", "nowhere", "--location 'nowhere': expected a region such as us-central1"),
    ],
)
def test_plan_refuses_names_gke_refuses(cluster: str, location: str, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        plan_cluster(cluster, location, Accelerator("nvidia-l4"))


def test_plan_installs_what_knative_mode_runs_on_before_kserve() -> None:
    text = plan_cluster("serve", "us-central1-a", Accelerator("nvidia-l4")).render()
    order = [
        "helm install cert-manager",
        "helm install knative-operator",
        "kind: KnativeServing",
        "kubectl wait --for=condition=Ready knativeserving/knative-serving",
        "helm install kserve-crd",
        "--set kserve.controller.deploymentMode=Knative",
        "timonel kserve manifests runtime | kubectl apply -f -",
        "kubectl create namespace models --dry-run=client -o yaml",
        "timonel kserve manifests rbac --namespace models | kubectl apply -f -",
    ]
    positions = [text.index(step) for step in order]
    assert positions == sorted(positions)


def test_every_file_the_plan_applies_comes_from_the_installed_package() -> None:
    text = plan_cluster("serve", "us-central1", Accelerator("nvidia-l4")).render()
    assert "checkout" not in text
    assert "kubectl apply -f -" in text
    assert re.search(r"kubectl apply -f (?!- )(?!-$)", text, re.MULTILINE) is None
