"""A Pod's QoS class from its containers' cpu and memory, as kube-apiserver sets it on create."""

from __future__ import annotations

from typing import Any

import pytest

from timonel.local.apiserver.qos import qos_class


def container(**resources: dict[str, Any]) -> dict[str, Any]:
    return {"name": "c", "image": "i", "resources": resources}


def test_no_requests_or_limits_is_best_effort() -> None:
    assert qos_class({"containers": [{"name": "c", "image": "i"}]}) == "BestEffort"


def test_zero_quantities_and_other_resources_do_not_count() -> None:
    spec = {"containers": [container(requests={"cpu": "0", "nvidia.com/gpu": "1"})]}
    assert qos_class(spec) == "BestEffort"


def test_equal_cpu_and_memory_requests_and_limits_are_guaranteed() -> None:
    both = {"cpu": "500m", "memory": "1Gi"}
    spec = {"containers": [container(requests=both, limits={"cpu": "0.5", "memory": "1024Mi"})]}
    assert qos_class(spec) == "Guaranteed"


def test_limits_alone_are_guaranteed_because_requests_default_to_them() -> None:
    spec = {"containers": [container(limits={"cpu": "1", "memory": "2Gi"})]}
    assert qos_class(spec) == "Guaranteed"


@pytest.mark.parametrize(
    "resources",
    [
        {"requests": {"cpu": "1"}},
        {"limits": {"cpu": "1"}},
        {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
        {"requests": {"cpu": "0", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
    ],
)
def test_anything_between_is_burstable(resources: dict[str, Any]) -> None:
    assert qos_class({"containers": [container(**resources)]}) == "Burstable"


def test_an_init_container_without_limits_makes_a_limited_pod_burstable() -> None:
    limited = container(limits={"cpu": "1", "memory": "2Gi"})
    spec = {"containers": [limited], "initContainers": [{"name": "init", "image": "i"}]}
    assert qos_class(spec) == "Burstable"


def test_pod_level_resources_stand_for_the_containers() -> None:
    spec = {
        "resources": {"limits": {"cpu": "2", "memory": "4Gi"}},
        "containers": [{"name": "c", "image": "i"}],
    }
    assert qos_class(spec) == "Guaranteed"


def test_a_malformed_quantity_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        qos_class({"containers": [container(limits={"cpu": "lots"})]})
