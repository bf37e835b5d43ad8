"""The GPUs GKE offers, the requests it can schedule for them, and the pick ``--gpu auto`` makes.

No library carries this table: gcloud validates accelerator types only against the live Compute
API, and KServe knows nothing of GKE's node labels. It is transcribed from the sources named in
``shared/gke/GKE_FACTS.md`` (cluster-toolkit's machine mappings, gpuhunt's memory sizes,
container-engine-accelerators' MIG profiles) and kept as plain data here, next to the checks that
use it, so a ServingSpec, KServe's admission rules and ``timonel gke plan`` agree on one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from timonel.errors import SpecError

SHARING_STRATEGIES = ("time-sharing", "mps")
#: GKE's default when a sharing strategy is set without a client count.
DEFAULT_SHARED_CLIENTS = 2
#: GKE's upper bound for ``max-shared-clients-per-gpu``.
MAX_SHARED_CLIENTS = 48

#: The model's size times this must fit in one GPU's memory: TF Serving also holds activations,
#: cuDNN workspaces and the CUDA context there, and a batch of inputs in flight.
GPU_MEMORY_HEADROOM = 2.0

_GB = 10**9


@dataclass(frozen=True)
class GpuType:
    """One ``cloud.google.com/gke-accelerator`` value and what GKE sells it with.

    ``machine_types`` maps the GPUs per node GKE offers to the machine type that carries them
    (the count is fixed by the machine type everywhere but on N1, where the listed machine is the
    one a plan uses). ``tier`` orders types by price for ``--gpu auto`` (1 is cheapest); types
    with no tier are older generations that auto never picks but that can still be asked for.
    ``mig_partitions`` maps each MIG partition size to how many fit on one GPU.
    """

    name: str
    model: str
    memory_gb: int
    family: str
    machine_types: Mapping[int, str]
    tier: int | None = None
    mig_partitions: Mapping[str, int] = field(default_factory=dict)
    retired: bool = False

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(sorted(self.machine_types))

    @property
    def memory_bytes(self) -> int:
        return self.memory_gb * _GB


def _n1(*sizes: tuple[int, str]) -> dict[int, str]:
    return dict(sizes)


_A100_80_MIG = {"1g.10gb": 7, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1, "7g.80gb": 1}

#: Every GPU type GKE offers, by its node label value.
CATALOG: Mapping[str, GpuType] = {
    gpu.name: gpu
    for gpu in (
        GpuType(
            "nvidia-tesla-t4",
            "NVIDIA T4",
            16,
            "N1",
            _n1((1, "n1-standard-4"), (2, "n1-standard-8"), (4, "n1-standard-16")),
            tier=1,
        ),
        GpuType(
            "nvidia-l4",
            "NVIDIA L4",
            24,
            "G2",
            {1: "g2-standard-8", 2: "g2-standard-24", 4: "g2-standard-48", 8: "g2-standard-96"},
            tier=1,
        ),
        GpuType(
            "nvidia-tesla-p4",
            "NVIDIA P4",
            8,
            "N1",
            _n1((1, "n1-standard-4"), (2, "n1-standard-8"), (4, "n1-standard-16")),
        ),
        GpuType(
            "nvidia-tesla-p100",
            "NVIDIA P100",
            16,
            "N1",
            _n1((1, "n1-standard-4"), (2, "n1-standard-8"), (4, "n1-standard-16")),
        ),
        GpuType(
            "nvidia-tesla-v100",
            "NVIDIA V100",
            16,
            "N1",
            _n1(
                (1, "n1-standard-8"),
                (2, "n1-standard-16"),
                (4, "n1-standard-32"),
                (8, "n1-standard-64"),
            ),
        ),
        GpuType(
            "nvidia-rtx-pro-6000",
            "NVIDIA RTX PRO 6000",
            96,
            "G4",
            {1: "g4-standard-48", 2: "g4-standard-96", 4: "g4-standard-192", 8: "g4-standard-384"},
            tier=2,
            mig_partitions={"1g.24gb": 4, "2g.48gb": 2, "4g.96gb": 1},
        ),
        GpuType(
            "nvidia-tesla-a100",
            "NVIDIA A100 40GB",
            40,
            "A2",
            {
                1: "a2-highgpu-1g",
                2: "a2-highgpu-2g",
                4: "a2-highgpu-4g",
                8: "a2-highgpu-8g",
                16: "a2-megagpu-16g",
            },
            tier=3,
            mig_partitions={"1g.5gb": 7, "2g.10gb": 3, "3g.20gb": 2, "4g.20gb": 1, "7g.40gb": 1},
        ),
        GpuType(
            "nvidia-a100-80gb",
            "NVIDIA A100 80GB",
            80,
            "A2",
            {1: "a2-ultragpu-1g", 2: "a2-ultragpu-2g", 4: "a2-ultragpu-4g", 8: "a2-ultragpu-8g"},
            tier=3,
            mig_partitions=_A100_80_MIG,
        ),
        GpuType(
            "nvidia-h100-80gb",
            "NVIDIA H100 80GB",
            80,
            "A3",
            {1: "a3-highgpu-1g", 2: "a3-highgpu-2g", 4: "a3-highgpu-4g", 8: "a3-highgpu-8g"},
            tier=4,
            mig_partitions={**_A100_80_MIG, "1g.20gb": 4},
        ),
        GpuType(
            "nvidia-h100-mega-80gb",
            "NVIDIA H100 Mega 80GB",
            80,
            "A3",
            {8: "a3-megagpu-8g"},
            tier=4,
            mig_partitions={**_A100_80_MIG, "1g.20gb": 4},
        ),
        GpuType(
            "nvidia-h200-141gb",
            "NVIDIA H200 141GB",
            141,
            "A3",
            {8: "a3-ultragpu-8g"},
            tier=4,
            mig_partitions={
                "1g.18gb": 7,
                "1g.35gb": 4,
                "2g.35gb": 3,
                "3g.71gb": 2,
                "4g.71gb": 1,
                "7g.141gb": 1,
            },
        ),
        GpuType(
            "nvidia-b200",
            "NVIDIA B200",
            180,
            "A4",
            {8: "a4-highgpu-8g"},
            tier=5,
            mig_partitions={
                "1g.23gb": 7,
                "1g.45gb": 4,
                "2g.45gb": 3,
                "3g.90gb": 2,
                "4g.90gb": 1,
                "7g.180gb": 1,
            },
        ),
        GpuType(
            "nvidia-gb200",
            "NVIDIA GB200",
            186,
            "A4X",
            {4: "a4x-highgpu-4g"},
            tier=5,
            mig_partitions={
                "1g.23gb": 7,
                "1g.47gb": 4,
                "2g.47gb": 3,
                "3g.93gb": 2,
                "4g.93gb": 1,
                "7g.186gb": 1,
            },
        ),
        GpuType(
            "nvidia-tesla-k80",
            "NVIDIA K80",
            12,
            "N1",
            _n1(
                (1, "n1-standard-4"),
                (2, "n1-standard-8"),
                (4, "n1-standard-16"),
                (8, "n1-standard-32"),
            ),
            retired=True,
        ),
    )
}


def gpu_type(name: str, *, field: str = "accelerator.type") -> GpuType:
    """The catalog entry for a ``cloud.google.com/gke-accelerator`` value, or a SpecError."""
    gpu = CATALOG.get(name)
    if gpu is None:
        known = ", ".join(sorted(n for n, g in CATALOG.items() if not g.retired))
        raise SpecError(
            f"{field}: {name!r} is not a GPU type GKE offers; expected one of {known} "
            "(the cloud.google.com/gke-accelerator value, e.g. nvidia-l4)",
            field=field,
        )
    if gpu.retired:
        raise SpecError(
            f"{field}: {name} has reached end of support on GKE and new nodes cannot use it; "
            "choose nvidia-tesla-t4 or nvidia-l4 instead",
            field=field,
        )
    return gpu


def check_gpu_request(
    name: str,
    count: int,
    *,
    sharing: str | None = None,
    max_shared_clients: int | None = None,
    mig_partition: str | None = None,
    fields: Mapping[str, str] | None = None,
) -> GpuType:
    """Refuse a GPU request GKE cannot schedule: unknown type, count, sharing or MIG size.

    ``fields`` names where each input came from (keys ``type``, ``count``, ``sharing``,
    ``max_shared_clients``, ``mig_partition``), so the same rules report spec attributes for a
    ServingSpec and manifest paths for a raw InferenceService.
    """
    where = {
        "type": "accelerator.type",
        "count": "accelerator.count",
        "sharing": "accelerator.sharing",
        "max_shared_clients": "accelerator.max_shared_clients",
        "mig_partition": "accelerator.mig_partition",
        **(fields or {}),
    }
    gpu = gpu_type(name, field=where["type"])
    if sharing is not None and sharing not in SHARING_STRATEGIES:
        raise SpecError(
            f"{where['sharing']}: {sharing!r} is not a GPU sharing strategy GKE knows; "
            "expected time-sharing or mps",
            field=where["sharing"],
        )
    if max_shared_clients is not None:
        if sharing is None:
            raise SpecError(
                f"{where['max_shared_clients']}: a shared-client count needs a GPU sharing "
                "strategy; set sharing to time-sharing or mps, or drop the count",
                field=where["max_shared_clients"],
            )
        if not 2 <= max_shared_clients <= MAX_SHARED_CLIENTS:
            raise SpecError(
                f"{where['max_shared_clients']}: {max_shared_clients} clients per GPU is out of "
                f"range; GKE accepts 2 to {MAX_SHARED_CLIENTS}",
                field=where["max_shared_clients"],
            )
    if mig_partition is not None:
        if not gpu.mig_partitions:
            with_mig = ", ".join(n for n, g in CATALOG.items() if g.mig_partitions)
            raise SpecError(
                f"{where['mig_partition']}: {gpu.name} has no MIG partitions; MIG needs one of "
                f"{with_mig}, or drop the partition size",
                field=where["mig_partition"],
            )
        if mig_partition not in gpu.mig_partitions:
            raise SpecError(
                f"{where['mig_partition']}: {mig_partition!r} is not a MIG partition size of "
                f"{gpu.name}; expected one of {', '.join(gpu.mig_partitions)}",
                field=where["mig_partition"],
            )
    if count < 1:
        raise SpecError(
            f"{where['count']}: {count} GPUs is not a request; ask for 1 or more, or no GPU",
            field=where["count"],
        )
    if sharing == "time-sharing" and count != 1:
        raise SpecError(
            f"{where['count']}: a container on a time-shared GPU may request exactly 1 "
            f"nvidia.com/gpu, not {count}; set the count to 1 or use mps",
            field=where["count"],
        )
    if sharing == "mps" and count > (max_shared_clients or DEFAULT_SHARED_CLIENTS):
        raise SpecError(
            f"{where['count']}: {count} MPS clients exceed the {max_shared_clients or 2} shared "
            "clients per GPU; lower the count or raise max_shared_clients",
            field=where["count"],
        )
    if mig_partition is not None and sharing is None and count != 1:
        raise SpecError(
            f"{where['count']}: a pod on a MIG partition requests 1 nvidia.com/gpu (one "
            f"partition), not {count}; set the count to 1 or pick a larger partition",
            field=where["count"],
        )
    if sharing is None and mig_partition is None and count not in gpu.machine_types:
        offered = ", ".join(str(c) for c in gpu.counts)
        raise SpecError(
            f"{where['count']}: GKE offers {gpu.name} with {offered} GPUs per node, not "
            f"{count}; pick one of those counts",
            field=where["count"],
        )
    return gpu


@dataclass(frozen=True)
class GpuChoice:
    """The GPU ``--gpu auto`` picked, and the sentence that says why."""

    type: str
    reason: str


def _gb(size: float) -> str:
    return f"{size / _GB:.1f} GB"


def choose_gpu(model_size_bytes: int) -> GpuChoice:
    """The smallest GPU of the cheapest tier whose memory holds the model with headroom.

    One GPU per replica: TF Serving places a model on one device, so a model that does not fit
    the largest single GPU cannot be served by adding GPUs.
    """
    if model_size_bytes <= 0:
        raise SpecError(
            f"model size: {model_size_bytes} bytes cannot size a GPU; give the SavedModel's size "
            "in bytes (timonel.json's size_bytes)",
            field="model_size_bytes",
        )
    needed = model_size_bytes * GPU_MEMORY_HEADROOM
    candidates = sorted(
        (g for g in CATALOG.values() if g.tier is not None and 1 in g.machine_types),
        key=lambda g: (g.tier, g.memory_gb),
    )
    fitting = [g for g in candidates if g.memory_bytes >= needed]
    if not fitting:
        largest = max(candidates, key=lambda g: g.memory_gb)
        raise SpecError(
            f"model size: a {_gb(model_size_bytes)} model needs {_gb(needed)} of GPU memory with "
            f"{GPU_MEMORY_HEADROOM:g}x headroom, more than the largest single GPU "
            f"({largest.name}, {largest.memory_gb} GB); TF Serving keeps a model on one GPU, so "
            "shrink the model (quantize it) or serve it on CPU",
            field="model_size_bytes",
        )
    chosen = fitting[0]
    smaller = [g for g in candidates if g.memory_gb < chosen.memory_gb and g.tier == chosen.tier]
    skipped = f"; {smaller[-1].name} ({smaller[-1].memory_gb} GB) is too small" if smaller else ""
    return GpuChoice(
        type=chosen.name,
        reason=(
            f"chose {chosen.name} ({chosen.model}, {chosen.memory_gb} GB): the model is "
            f"{_gb(model_size_bytes)} and needs {_gb(needed)} with {GPU_MEMORY_HEADROOM:g}x "
            "headroom for activations and the CUDA context; it is the smallest GPU of the "
            f"cheapest tier that holds it{skipped}"
        ),
    )
