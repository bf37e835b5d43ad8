"""The GKE GPU catalog, GPU requests, ``--gpu auto`` and the cluster plan."""

from __future__ import annotations

import re

import pytest

from timonel import gke
from timonel.errors import SpecError
from timonel.spec import Accelerator


def test_every_offered_gpu_has_memory_counts_and_a_machine_for_each_count() -> None:
    for name, gpu in gke.CATALOG.items():
        assert gpu.name == name
        assert gpu.memory_gb > 0
        assert gpu.counts and all(gpu.machine_types[c] for c in gpu.counts)
        for size, per_gpu in gpu.mig_partitions.items():
            assert size.endswith("gb") and per_gpu >= 1


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            {"name": "nvidia-l5"},
            "accelerator.type: 'nvidia-l5' is not a GPU type GKE offers; expected one of",
        ),
        (
            {"name": "nvidia-tesla-k80"},
            "nvidia-tesla-k80 has reached end of support on GKE",
        ),
        (
            {"name": "nvidia-l4", "count": 3},
            "accelerator.count: GKE offers nvidia-l4 with 1, 2, 4, 8 GPUs per node, not 3",
        ),
        (
            {"name": "nvidia-h200-141gb", "count": 1},
            "GKE offers nvidia-h200-141gb with 8 GPUs per node, not 1",
        ),
        ({"name": "nvidia-l4", "count": 0}, "accelerator.count: 0 GPUs is not a request"),
        (
            {"name": "nvidia-l4", "mig_partition": "1g.10gb"},
            "accelerator.mig_partition: nvidia-l4 has no MIG partitions; MIG needs one of",
        ),
        (
            {"name": "nvidia-tesla-a100", "mig_partition": "1g.10gb"},
            "'1g.10gb' is not a MIG partition size of nvidia-tesla-a100; expected one of 1g.5gb",
        ),
        (
            {"name": "nvidia-tesla-a100", "mig_partition": "1g.5gb", "count": 2},
            "a pod on a MIG partition requests 1 nvidia.com/gpu (one partition), not 2",
        ),
        (
            {"name": "nvidia-l4", "sharing": "time-sharing", "count": 2},
            "a container on a time-shared GPU may request exactly 1 nvidia.com/gpu, not 2",
        ),
        (
            {"name": "nvidia-l4", "sharing": "mps", "max_shared_clients": 2, "count": 3},
            "3 MPS clients exceed the 2 shared clients per GPU",
        ),
        (
            {"name": "nvidia-l4", "sharing": "time-sharing", "max_shared_clients": 49},
            "49 clients per GPU is out of range; GKE accepts 2 to 48",
        ),
        (
            {"name": "nvidia-l4", "max_shared_clients": 4},
            "a shared-client count needs a GPU sharing strategy",
        ),
        (
            {"name": "nvidia-l4", "sharing": "fair"},
            "'fair' is not a GPU sharing strategy GKE knows; expected time-sharing or mps",
        ),
    ],
)
def test_gpu_requests_gke_cannot_schedule_are_refused(
    request_: dict[str, object], message: str
) -> None:
    args = dict(request_)
    name = str(args.pop("name"))
    count = int(str(args.pop("count", 1)))
    with pytest.raises(SpecError) as info:
        gke.check_gpu_request(name, count, **args)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert info.value.field is not None and info.value.field.startswith("accelerator.")


@pytest.mark.parametrize(
    ("name", "count", "options"),
    [
        ("nvidia-l4", 2, {}),
        ("nvidia-tesla-a100", 16, {}),
        ("nvidia-h100-80gb", 1, {"mig_partition": "1g.20gb"}),
        ("nvidia-tesla-t4", 1, {"sharing": "time-sharing", "max_shared_clients": 4}),
        ("nvidia-l4", 2, {"sharing": "mps", "max_shared_clients": 4}),
    ],
)
def test_gpu_requests_gke_offers_pass(name: str, count: int, options: dict[str, object]) -> None:
    assert gke.check_gpu_request(name, count, **options).name == name  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("size", "chosen"),
    [
        (500 * 10**6, "nvidia-tesla-t4"),
        (7 * 10**9, "nvidia-tesla-t4"),
        (10 * 10**9, "nvidia-l4"),
        (30 * 10**9, "nvidia-rtx-pro-6000"),
        (48 * 10**9, "nvidia-rtx-pro-6000"),
    ],
)
def test_auto_picks_the_smallest_gpu_of_the_cheapest_tier_that_holds_the_model(
    size: int, chosen: str
) -> None:
    assert gke.choose_gpu(size).type == chosen


def test_auto_says_which_gpu_and_why() -> None:
    choice = gke.choose_gpu(10 * 10**9)
    assert choice.reason == (
        "chose nvidia-l4 (NVIDIA L4, 24 GB): the model is 10.0 GB and needs 20.0 GB with 2x "
        "headroom for activations and the CUDA context; it is the smallest GPU of the cheapest "
        "tier that holds it; nvidia-tesla-t4 (16 GB) is too small"
    )


def test_auto_refuses_a_model_no_single_gpu_holds() -> None:
    with pytest.raises(SpecError) as info:
        gke.choose_gpu(60 * 10**9)
    assert "a 60.0 GB model needs 120.0 GB of GPU memory with 2x headroom" in str(info.value)
    assert "TF Serving keeps a model on one GPU" in str(info.value)


def test_auto_refuses_a_size_that_is_not_one() -> None:
    with pytest.raises(SpecError, match="0 bytes cannot size a GPU"):
        gke.choose_gpu(0)


@pytest.mark.parametrize(
    ("accelerator", "labels"),
    [
        (Accelerator("nvidia-l4"), {gke.ACCELERATOR_LABEL: "nvidia-l4"}),
        (
            Accelerator("nvidia-l4", count=2, autopilot=True, spot=True),
            {
                gke.ACCELERATOR_LABEL: "nvidia-l4",
                gke.ACCELERATOR_COUNT_LABEL: "2",
                gke.SPOT_LABEL: "true",
            },
        ),
        (
            Accelerator("nvidia-tesla-t4", sharing="time-sharing"),
            {
                gke.ACCELERATOR_LABEL: "nvidia-tesla-t4",
                gke.SHARING_STRATEGY_LABEL: "time-sharing",
                gke.MAX_SHARED_CLIENTS_LABEL: "2",
            },
        ),
        (
            Accelerator("nvidia-tesla-a100", mig_partition="3g.20gb"),
            {gke.ACCELERATOR_LABEL: "nvidia-tesla-a100", gke.PARTITION_SIZE_LABEL: "3g.20gb"},
        ),
    ],
)
def test_node_selector_has_gkes_labels(accelerator: Accelerator, labels: dict[str, str]) -> None:
    assert gke.node_selector(accelerator) == labels


def test_plan_creates_a_gpu_pool_that_starts_at_zero_with_workload_identity() -> None:
    plan = gke.plan_cluster(
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
    assert "kubectl apply -f kserve/tensorflow-serving-runtime.yaml" in text
    assert "GPU quota must cover max nodes x GPUs per node (8)" in text


def test_plan_writes_sharing_and_mig_into_the_accelerator_flag() -> None:
    shared = gke.plan_cluster(
        "c", "us-east1", Accelerator("nvidia-tesla-t4", sharing="mps", max_shared_clients=4)
    ).render()
    assert "gpu-sharing-strategy=mps,max-shared-clients-per-gpu=4" in shared
    mig = gke.plan_cluster(
        "c", "us-east1", Accelerator("nvidia-a100-80gb", mig_partition="2g.20gb")
    ).render()
    assert "gpu-partition-size=2g.20gb" in mig
    assert "--machine-type=a2-ultragpu-1g" in mig


def test_plan_for_autopilot_needs_no_node_pool() -> None:
    text = gke.plan_cluster(
        "auto", "europe-west4", Accelerator("nvidia-l4", autopilot=True)
    ).render()
    assert "gcloud container clusters create-auto auto" in text
    assert "node-pools" not in text


def test_plan_refuses_inverted_node_bounds() -> None:
    with pytest.raises(SpecError, match="expected 0 <= min <= max and max >= 1"):
        gke.plan_cluster("c", "us-east1", Accelerator("nvidia-l4"), min_nodes=3, max_nodes=1)


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
        gke.plan_cluster(cluster, location, Accelerator("nvidia-l4"))


def test_plan_installs_what_knative_mode_runs_on_before_kserve() -> None:
    text = gke.plan_cluster("serve", "us-central1-a", Accelerator("nvidia-l4")).render()
    order = [
        "helm install cert-manager",
        "helm install knative-operator",
        "kind: KnativeServing",
        "kubectl wait --for=condition=Ready knativeserving/knative-serving",
        "helm install kserve-crd",
        "--set kserve.controller.deploymentMode=Knative",
        "kubectl apply -f kserve/tensorflow-serving-runtime.yaml",
        "kubectl create namespace models --dry-run=client -o yaml",
    ]
    positions = [text.index(step) for step in order]
    assert positions == sorted(positions)
