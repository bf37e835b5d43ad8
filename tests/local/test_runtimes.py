"""The serving runtime chosen for a predictor, by KServe's rules, without a server."""

from __future__ import annotations

from typing import Any

import pytest

from timonel.kserve.manifests import serving_runtime
from timonel.local.runtimes import Chosen, NoRuntime, choose

SHIPPED = serving_runtime()  # tensorflow version "2", autoSelect, priority 3, v1 and grpc-v1


def runtime(
    name: str,
    *,
    version: str | None = "2",
    auto: bool = True,
    priority: int | None = None,
    created: str = "2026-01-01T00:00:00Z",
    **spec: Any,
) -> dict[str, Any]:
    supported: dict[str, Any] = {"name": "tensorflow", "autoSelect": auto}
    if version:
        supported["version"] = version
    if priority is not None:
        supported["priority"] = priority
    return {
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": {"supportedModelFormats": [supported], "protocolVersions": ["v1"], **spec},
    }


def predictor(**model: Any) -> dict[str, Any]:
    return {"model": {"modelFormat": {"name": "tensorflow"}, "storageUri": "gs://b/m", **model}}


NOT_FOUND = NoRuntime(
    "NoSupportingRuntime", "No runtime found to support specified framework/version"
)


@pytest.mark.parametrize(
    ("spec", "namespaced", "cluster", "chosen"),
    [
        (predictor(), [], [SHIPPED], Chosen(SHIPPED["metadata"]["name"], cluster=True)),
        (
            {"tensorflow": {"storageUri": "gs://b/m"}},
            [],
            [SHIPPED],
            Chosen(SHIPPED["metadata"]["name"], cluster=True),
        ),
        (predictor(), [runtime("mine")], [SHIPPED], Chosen("mine", cluster=False)),
        (
            predictor(modelFormat={"name": "tensorflow", "version": "2"}),
            [],
            [SHIPPED],
            Chosen(SHIPPED["metadata"]["name"], cluster=True),
        ),
        (
            predictor(modelFormat={"name": "tensorflow", "version": "2.15"}),
            [],
            [SHIPPED],
            NOT_FOUND,
        ),
        (predictor(protocolVersion="v2"), [], [SHIPPED], NOT_FOUND),
        (predictor(), [], [runtime("manual", auto=False)], NOT_FOUND),
        (predictor(), [], [runtime("off", disabled=True)], NOT_FOUND),
        (
            predictor(),
            [],
            [runtime("low", priority=1), runtime("high", priority=5)],
            Chosen("high", cluster=True),
        ),
        (
            predictor(),
            [],
            [
                runtime("older", created="2026-01-01T00:00:00Z"),
                runtime("newer", created="2026-02-01T00:00:00Z"),
            ],
            Chosen("newer", cluster=True),
        ),
        (predictor(runtime="manual"), [], [runtime("manual", auto=False)], Chosen("manual", True)),
        (
            predictor(runtime="missing"),
            [],
            [SHIPPED],
            NoRuntime("RuntimeNotRecognized", "Waiting for runtime to become available"),
        ),
        (
            predictor(runtime="off"),
            [],
            [runtime("off", disabled=True)],
            NoRuntime("RuntimeDisabled", "Specified runtime is disabled"),
        ),
        (
            predictor(runtime="v1only", protocolVersion="v2"),
            [],
            [runtime("v1only")],
            NoRuntime(
                "NoSupportingRuntime",
                "Specified runtime does not support specified protocol version",
            ),
        ),
        (
            predictor(runtime="other", modelFormat={"name": "sklearn"}),
            [],
            [runtime("other")],
            NoRuntime(
                "NoSupportingRuntime",
                "Specified runtime does not support specified framework/version",
            ),
        ),
    ],
    ids=[
        "the shipped runtime by autoSelect",
        "predictor.tensorflow as the defaulter rewrites it",
        "a namespaced runtime before a cluster one",
        "an exact version",
        "a version no runtime lists",
        "a protocol the runtime does not speak",
        "autoSelect off is never picked unnamed",
        "disabled",
        "the highest priority",
        "the newest of equal priority",
        "named, autoSelect does not matter",
        "named and missing",
        "named and disabled",
        "named without the protocol",
        "named without the format",
    ],
)
def test_choose(spec, namespaced, cluster, chosen) -> None:
    assert choose(spec, namespaced, cluster) == chosen
