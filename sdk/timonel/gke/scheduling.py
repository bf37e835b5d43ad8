"""How a pod lands on GKE's GPU nodes: the node labels it selects and the taints it tolerates.

The keys are GKE's own labels: a GPU pod selects ``cloud.google.com/gke-accelerator`` (and, on
Autopilot, ``cloud.google.com/gke-accelerator-count``); Spot, GPU sharing and MIG partitions are
further labels on the node pool that the pod selects. Both functions take any ``GpuRequest``
(``timonel.Accelerator`` is one), so GKE's rules do not depend on the ServingSpec.
"""

from __future__ import annotations

from typing import Protocol

from timonel.gke.catalog import DEFAULT_SHARED_CLIENTS
from timonel.kserve.vocabulary import GPU_RESOURCE

ACCELERATOR_LABEL = "cloud.google.com/gke-accelerator"
ACCELERATOR_COUNT_LABEL = "cloud.google.com/gke-accelerator-count"
SPOT_LABEL = "cloud.google.com/gke-spot"
SHARING_STRATEGY_LABEL = "cloud.google.com/gke-gpu-sharing-strategy"
MAX_SHARED_CLIENTS_LABEL = "cloud.google.com/gke-max-shared-clients-per-gpu"
PARTITION_SIZE_LABEL = "cloud.google.com/gke-gpu-partition-size"


class GpuRequest(Protocol):
    """The GPUs one replica asks for, as plain values."""

    @property
    def type(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def spot(self) -> bool: ...
    @property
    def autopilot(self) -> bool: ...
    @property
    def sharing(self) -> str | None: ...
    @property
    def max_shared_clients(self) -> int | None: ...
    @property
    def mig_partition(self) -> str | None: ...


def node_selector(accelerator: GpuRequest) -> dict[str, str]:
    """The node labels a pod selects to land on the GPU nodes the accelerator describes."""
    labels = {ACCELERATOR_LABEL: accelerator.type}
    if accelerator.autopilot:
        labels[ACCELERATOR_COUNT_LABEL] = str(accelerator.count)
    if accelerator.spot:
        labels[SPOT_LABEL] = "true"
    if accelerator.sharing is not None:
        labels[SHARING_STRATEGY_LABEL] = accelerator.sharing
        labels[MAX_SHARED_CLIENTS_LABEL] = str(
            accelerator.max_shared_clients or DEFAULT_SHARED_CLIENTS
        )
    if accelerator.mig_partition is not None:
        labels[PARTITION_SIZE_LABEL] = accelerator.mig_partition
    return labels


def tolerations(accelerator: GpuRequest) -> list[dict[str, str]]:
    """Tolerations for GKE's GPU taint (and the Spot taint): harmless where GKE adds them itself."""
    out = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    if accelerator.spot:
        out.append(
            {"key": SPOT_LABEL, "operator": "Equal", "value": "true", "effect": "NoSchedule"}
        )
    return out
