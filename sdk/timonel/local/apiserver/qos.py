"""A Pod's quality-of-service class, as kube-apiserver computes it when the Pod is created.

Mirrors ``ComputePodQOS`` (pkg/apis/core/helper/qos): only cpu and memory count; a pod with no
positive request or limit is BestEffort; one whose every container limits both, with requests
equal to the limits summed over its containers, is Guaranteed; anything else is Burstable. A
container's missing request defaults to its limit first, as the Pod's defaulting does before the
class is computed. Pod-level ``spec.resources``, when set, stands for the containers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

_COMPUTE = ("cpu", "memory")


def qos_class(spec: Mapping[str, Any]) -> str:
    pod_level = spec.get("resources") or {}
    if pod_level.get("requests") or pod_level.get("limits"):
        resources: Iterable[Mapping[str, Any]] = [pod_level]
    else:
        containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]
        resources = [container.get("resources") or {} for container in containers]
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for found in resources:
        declared = _compute(found.get("limits") or {})
        limited = _above_zero(declared)
        requested = _above_zero({**declared, **_compute(found.get("requests") or {})})
        for name, amount in requested.items():
            requests[name] = requests.get(name, Decimal(0)) + amount
        for name, amount in limited.items():
            limits[name] = limits.get(name, Decimal(0)) + amount
        if not set(_COMPUTE) <= limited.keys():
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and requests == limits:
        return "Guaranteed"
    return "Burstable"


def _compute(quantities: Mapping[str, Any]) -> dict[str, Decimal]:
    """The cpu and memory quantities, parsed."""
    if not quantities:
        return {}
    from kubernetes.utils.quantity import parse_quantity  # loads the client: only for resources

    return {name: parse_quantity(quantities[name]) for name in _COMPUTE if name in quantities}


def _above_zero(quantities: Mapping[str, Decimal]) -> dict[str, Decimal]:
    return {name: amount for name, amount in quantities.items() if amount > 0}
