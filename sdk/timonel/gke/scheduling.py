"""How a pod lands on GKE's GPU nodes: the node labels it selects and the taints it tolerates.

The keys are GKE's own labels: a GPU pod selects ``cloud.google.com/gke-accelerator`` (and, on
Autopilot, ``cloud.google.com/gke-accelerator-count``); Spot, GPU sharing and MIG partitions are
further labels on the node pool that the pod selects. Both functions take any ``GpuRequest``
(``timonel.Accelerator`` is one), so GKE's rules do not depend on the ServingSpec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from timonel.errors import SpecError
from timonel.gke.catalog import CATALOG, DEFAULT_SHARED_CLIENTS
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


def accelerator_options(selector: dict[str, str], *, field: str) -> dict[str, Any]:
    """The ``Accelerator`` attributes GKE's GPU labels in a node selector say, popped from it.

    The reverse of ``node_selector`` (without the count, which is a resource limit): the labels
    left in ``selector`` are not GKE's GPU labels. Empty when the selector names no GPU type.
    """
    gpu_type = selector.pop(ACCELERATOR_LABEL, None)
    if gpu_type is None:
        return {}
    options: dict[str, Any] = {"type": gpu_type}
    if selector.pop(ACCELERATOR_COUNT_LABEL, None) is not None:
        options["autopilot"] = True
    if selector.pop(SPOT_LABEL, None) == "true":
        options["spot"] = True
    for label, name in (
        (SHARING_STRATEGY_LABEL, "sharing"),
        (MAX_SHARED_CLIENTS_LABEL, "max_shared_clients"),
        (PARTITION_SIZE_LABEL, "mig_partition"),
    ):
        value = selector.pop(label, None)
        if value is None:
            continue
        if name == "max_shared_clients":
            if not value.isdigit():
                raise SpecError(
                    f"{field}[{label}]: {value!r} is not a whole number of clients per GPU",
                    field=f"{field}[{label}]",
                )
            options[name] = int(value)
        else:
            options[name] = value
    return options


def requested_gpus(resources: Mapping[str, Any] | None, *, field: str) -> tuple[str | None, int]:
    """The GPU type and count a pod's resource limits ask for: ``(None, 0)`` for none.

    A limit is a GPU when its name is a device plugin's GPU resource (``nvidia.com/gpu``: the
    type then comes from the node selector, so it is None here) or a GKE accelerator name, in
    GKE's spelling (``nvidia-l4``) or Vertex AI's (``NVIDIA_L4``). That is what KFP's
    ``set_accelerator_type(T).set_accelerator_limit(N)`` puts in a task's resources.
    """
    quantities = dict((resources or {}).get("limits") or {})
    for name, quantity in quantities.items():
        gke_name = name.lower().replace("_", "-")
        if name != GPU_RESOURCE and gke_name not in CATALOG:
            continue
        text = str(quantity)
        if not text.isdigit() or int(text) < 1:
            raise SpecError(
                f"{field}.limits[{name}]: {quantity!r} is not a whole number of GPUs; set an "
                "accelerator limit of 1 or more",
                field=f"{field}.limits[{name}]",
            )
        return (None if name == GPU_RESOURCE else gke_name), int(text)
    return None, 0
