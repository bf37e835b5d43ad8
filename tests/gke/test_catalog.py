"""The GKE GPU catalog, GPU requests and ``--gpu auto``."""

from __future__ import annotations

import pytest

from timonel.errors import SpecError
from timonel.gke import catalog as gke


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
