"""KServe's admission rules (and what GKE, Knative or KServe would refuse or ignore): one per case.

Each case starts from a manifest ``render`` produced, breaks one thing, and asserts the field
and the message ``admit`` reports, as the local API server returns them in a 422.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from timonel.errors import SpecError
from timonel.kserve import admission
from timonel.kserve import render as isvc
from timonel.spec import Accelerator, Autoscaling, Canary, Model, ServingSpec

Manifest = dict[str, Any]


def knative() -> Manifest:
    return isvc.render(
        ServingSpec(
            model=Model(name="digits", storage_uri="gs://b/digits/v1", tensorflow_version="2.20.0")
        )
    )


def gpu() -> Manifest:
    return isvc.render(
        ServingSpec(
            model=Model(name="digits", storage_uri="gs://b/digits/v1"),
            accelerator=Accelerator("nvidia-l4"),
        )
    )


def standard() -> Manifest:
    return isvc.render(
        ServingSpec(
            model=Model(name="digits", storage_uri="gs://b/digits/v1"),
            mode="standard",
            predictor_name="v1",
            autoscaling=Autoscaling(min_replicas=2, max_replicas=4),
            canary=Canary(traffic_percent=10, name="v2", storage_uri="gs://b/digits/v2"),
        )
    )


def annotate(values: dict[str, str]) -> Callable[[Manifest], None]:
    def change(m: Manifest) -> None:
        m["metadata"]["annotations"].update(values)

    return change


def set_at(path: str, value: Any) -> Callable[[Manifest], None]:
    def change(m: Manifest) -> None:
        node = m
        *parents, last = path.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        node[last] = value

    return change


def drop(path: str) -> Callable[[Manifest], None]:
    def change(m: Manifest) -> None:
        node = m
        *parents, last = path.split(".")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]

    return change


def both(*changes: Callable[[Manifest], None]) -> Callable[[Manifest], None]:
    def change(m: Manifest) -> None:
        for c in changes:
            c(m)

    return change


MODE = "metadata.annotations[serving.kserve.io/deploymentMode]"
P = "spec.predictor"
LIMITS = "spec.predictor.model.resources.limits"
SELECTOR = "spec.predictor.nodeSelector"

RULES: list[tuple[str, Callable[[], Manifest], Callable[[Manifest], None], str, str]] = [
    (
        "name-format",
        knative,
        set_at("metadata.name", "Digits_1"),
        "metadata.name",
        'the InferenceService "Digits_1" is invalid: a InferenceService name must consist of '
        "lower case alphanumeric characters or '-'",
    ),
    (
        "name-missing",
        knative,
        drop("metadata.name"),
        "metadata.name",
        "an InferenceService needs a name",
    ),
    (
        "name-too-long-for-knative-revisions",
        knative,
        set_at("metadata.name", "a" * 48),
        "metadata.name",
        f"KServe derives '{'a' * 48}-predictor-00001' from it, which must fit a 63-character DNS "
        "label, so use at most 47 characters",
    ),
    (
        "name-too-long-for-tag-routes",
        knative,
        both(
            set_at("metadata.name", "a" * 47),
            annotate({"serving.kserve.io/enable-tag-routing": "true"}),
        ),
        "metadata.name",
        f"'latest-{'a' * 47}-predictor'",
    ),
    (
        "name-too-long-for-standard-canary",
        standard,
        set_at("metadata.name", "a" * 51),
        "metadata.name",
        f"KServe derives '{'a' * 51}-v2-predictor' from it",
    ),
    (
        "unknown-deployment-mode",
        knative,
        annotate({"serving.kserve.io/deploymentMode": "Serverles"}),
        MODE,
        "[Serverles] is not a deployment mode Timonel serves with, and KServe would silently fall "
        "back to its default; use Knative or Standard",
    ),
    (
        "autoscaler-class",
        knative,
        annotate({"serving.kserve.io/autoscalerClass": "kpa"}),
        "metadata.annotations[serving.kserve.io/autoscalerClass]",
        "[kpa] is not a supported autoscaler class type; use one of hpa, external, keda, none",
    ),
    (
        "gpu-resource-types-json",
        knative,
        annotate({"serving.kserve.io/gpu-resource-types": "example.com/gpu"}),
        "metadata.annotations[serving.kserve.io/gpu-resource-types]",
        "invalid GPU format(example.com/gpu): must be a valid JSON array",
    ),
    ("no-predictor", knative, drop("spec.predictor"), P, "an InferenceService needs a predictor"),
    (
        "min-scale-annotation-dropped",
        knative,
        annotate({"autoscaling.knative.dev/min-scale": "0"}),
        "metadata.annotations[autoscaling.knative.dev/min-scale]",
        "KServe drops this annotation; set spec.predictor.minReplicas instead",
    ),
    (
        "knative-annotation-in-standard",
        standard,
        annotate({"autoscaling.knative.dev/scale-down-delay": "5m"}),
        "metadata.annotations[autoscaling.knative.dev/scale-down-delay]",
        "is a Knative setting that KServe's Standard mode ignores",
    ),
    (
        "knative-class",
        knative,
        annotate({"autoscaling.knative.dev/class": "kpa"}),
        "metadata.annotations[autoscaling.knative.dev/class]",
        "[kpa] is not a Knative autoscaler class; use kpa.autoscaling.knative.dev",
    ),
    (
        "tag-routing-boolean",
        knative,
        annotate({"serving.kserve.io/enable-tag-routing": "yes"}),
        "metadata.annotations[serving.kserve.io/enable-tag-routing]",
        "'yes' is not a boolean",
    ),
    (
        "scale-down-delay-limit",
        knative,
        annotate({"autoscaling.knative.dev/scale-down-delay": "2h"}),
        "metadata.annotations[autoscaling.knative.dev/scale-down-delay]",
        "2h exceeds Knative's limit for scale-down-delay; use 0s to 1h",
    ),
    (
        "progress-deadline-duration",
        knative,
        annotate({"serving.knative.dev/progress-deadline": "ten minutes"}),
        "metadata.annotations[serving.knative.dev/progress-deadline]",
        "'ten minutes' is not a duration",
    ),
    (
        "exactly-one-implementation",
        knative,
        set_at("spec.predictor.tensorflow", {"storageUri": "gs://b/m"}),
        P,
        "must be specified in PredictorSpec (found: model, tensorflow)",
    ),
    (
        "no-implementation",
        knative,
        drop("spec.predictor.model"),
        P,
        "(found: none)",
    ),
    (
        "container-name-in-model",
        knative,
        set_at("spec.predictor.model.name", "tfs"),
        "spec.predictor.model.name",
        "the 'name' field is not allowed in standard predictor",
    ),
    (
        "storage-uri-and-uris",
        knative,
        set_at("spec.predictor.storageUris", [{"uri": "gs://b/x", "mountPath": "/mnt/x"}]),
        "spec.predictor.storageUris",
        "Setting both StorageURI and StorageURIs is not supported.",
    ),
    (
        "pythonpath",
        knative,
        set_at("spec.predictor.model.env", [{"name": "PYTHONPATH", "value": "/x"}]),
        "spec.predictor.model.env[0]",
        'setting PYTHONPATH in container "model" is not allowed for security reasons',
    ),
    (
        "storage-scheme",
        knative,
        set_at("spec.predictor.model.storageUri", "ftp://host/model"),
        "spec.predictor.model.storageUri",
        "StorageURI not supported: storageUri, must be one of: [gs://, s3://",
    ),
    (
        "gpu-only-in-requests",
        knative,
        lambda m: m["spec"]["predictor"]["model"]["resources"]["requests"].update(
            {"nvidia.com/gpu": "1"}
        ),
        "spec.predictor.model.resources.requests[nvidia.com/gpu]",
        "a GPU must be in limits",
    ),
    (
        "gpu-requests-equal-limits",
        gpu,
        lambda m: m["spec"]["predictor"]["model"]["resources"]["requests"].update(
            {"nvidia.com/gpu": "2"}
        ),
        "spec.predictor.model.resources.limits[nvidia.com/gpu]",
        "GPU requests (2) must equal limits (1)",
    ),
    (
        "gpu-whole-number",
        gpu,
        lambda m: [
            m["spec"]["predictor"]["model"]["resources"][k].update({"nvidia.com/gpu": "500m"})
            for k in ("limits", "requests")
        ],
        "spec.predictor.model.resources.limits[nvidia.com/gpu]",
        "'500m' is not a whole number of GPUs",
    ),
    (
        "runtime-not-gpu-with-gpu",
        gpu,
        set_at("spec.predictor.model.runtimeVersion", "2.20.0"),
        "spec.predictor.model.runtimeVersion",
        "Tensorflow RuntimeVersion is not GPU enabled but GPU resources are requested; KServe "
        "uses the tag as written, so use 2.20.0-gpu",
    ),
    (
        "gpu-runtime-without-gpu",
        knative,
        set_at("spec.predictor.model.runtimeVersion", "2.20.0-gpu"),
        "spec.predictor.model.runtimeVersion",
        "Tensorflow RuntimeVersion is GPU enabled but GPU resources are not requested",
    ),
    (
        "runtime-older-than-tensorflow",
        knative,
        set_at("spec.predictor.model.runtimeVersion", "2.15.0"),
        "spec.predictor.model.runtimeVersion",
        "TF Serving 2.15.0 is older than TensorFlow 2.20.0, which exported the model",
    ),
    (
        "gpu-selector-without-gpu",
        knative,
        set_at(SELECTOR, {"cloud.google.com/gke-accelerator": "nvidia-l4"}),
        f"{SELECTOR}[cloud.google.com/gke-accelerator]",
        "selects nvidia-l4 nodes but the model requests no nvidia.com/gpu",
    ),
    (
        "gpu-type-unknown",
        gpu,
        set_at(f"{SELECTOR}", {"cloud.google.com/gke-accelerator": "nvidia-rtx-4090"}),
        f"{SELECTOR}[cloud.google.com/gke-accelerator]",
        "'nvidia-rtx-4090' is not a GPU type GKE offers",
    ),
    (
        "gpu-type-unknown-in-kserve-annotation",
        gpu,
        both(drop(SELECTOR), annotate({"serving.kserve.io/gke-accelerator": "nvidia-a10"})),
        "metadata.annotations[serving.kserve.io/gke-accelerator]",
        "'nvidia-a10' is not a GPU type GKE offers",
    ),
    (
        "gpu-count-not-offered",
        gpu,
        lambda m: [
            m["spec"]["predictor"]["model"]["resources"][k].update({"nvidia.com/gpu": "3"})
            for k in ("limits", "requests")
        ],
        f"{LIMITS}[nvidia.com/gpu]",
        "GKE offers nvidia-l4 with 1, 2, 4, 8 GPUs per node, not 3",
    ),
    (
        "mig-on-gpu-without-mig",
        gpu,
        set_at(
            SELECTOR,
            {
                "cloud.google.com/gke-accelerator": "nvidia-l4",
                "cloud.google.com/gke-gpu-partition-size": "1g.10gb",
            },
        ),
        f"{SELECTOR}[cloud.google.com/gke-gpu-partition-size]",
        "nvidia-l4 has no MIG partitions",
    ),
    (
        "sharing-strategy-unknown",
        gpu,
        set_at(
            SELECTOR,
            {
                "cloud.google.com/gke-accelerator": "nvidia-l4",
                "cloud.google.com/gke-gpu-sharing-strategy": "fair-share",
            },
        ),
        f"{SELECTOR}[cloud.google.com/gke-gpu-sharing-strategy]",
        "'fair-share' is not a GPU sharing strategy GKE knows",
    ),
    (
        "autopilot-count-mismatch",
        gpu,
        set_at(
            SELECTOR,
            {
                "cloud.google.com/gke-accelerator": "nvidia-l4",
                "cloud.google.com/gke-accelerator-count": "2",
            },
        ),
        f"{SELECTOR}[cloud.google.com/gke-accelerator-count]",
        "selects nodes with 2 GPUs but the model requests 1",
    ),
    (
        "min-replicas-negative",
        knative,
        set_at("spec.predictor.minReplicas", -1),
        "spec.predictor.minReplicas",
        "'MinReplicas' cannot be less than 0 (got -1)",
    ),
    (
        "max-replicas-negative",
        knative,
        set_at("spec.predictor.maxReplicas", -2),
        "spec.predictor.maxReplicas",
        "'MaxReplicas' cannot be less than 0 (got -2)",
    ),
    (
        "min-above-max",
        knative,
        both(set_at("spec.predictor.minReplicas", 5), set_at("spec.predictor.maxReplicas", 2)),
        "spec.predictor.minReplicas",
        "'MinReplicas' cannot be greater than MaxReplicas (5 > 2)",
    ),
    (
        "container-concurrency-negative",
        knative,
        set_at("spec.predictor.containerConcurrency", -1),
        "spec.predictor.containerConcurrency",
        "parallelism cannot be less than 0",
    ),
    (
        "deployment-strategy-in-knative",
        knative,
        set_at("spec.predictor.deploymentStrategy", {"type": "Recreate"}),
        "spec.predictor.deploymentStrategy",
        "customizing deploymentStrategy is only supported for raw deployment mode",
    ),
    (
        "knative-metric",
        knative,
        set_at("spec.predictor.scaleMetric", "cpu"),
        "spec.predictor.scaleMetric",
        "[cpu] is not a supported metric; Knative's autoscaler scales on concurrency or rps",
    ),
    (
        "knative-rps-target",
        knative,
        both(set_at("spec.predictor.scaleMetric", "rps"), set_at("spec.predictor.scaleTarget", 0)),
        "spec.predictor.scaleTarget",
        "the target for rps should be greater than 1 (got 0)",
    ),
    (
        "knative-hpa-class-metric",
        knative,
        both(
            annotate({"autoscaling.knative.dev/class": "hpa.autoscaling.knative.dev"}),
            set_at("spec.predictor.scaleMetric", "rps"),
        ),
        "spec.predictor.scaleMetric",
        "[rps] is not a supported metric; Knative's HPA class scales on cpu or memory",
    ),
    (
        "standard-hpa-metric",
        standard,
        set_at("spec.predictor.scaleMetric", "rps"),
        "spec.predictor.scaleMetric",
        "[rps] is not a supported metric; the HPA autoscaler scales on cpu or memory",
    ),
    (
        "standard-without-class-ignores-metric",
        standard,
        both(
            lambda m: m["metadata"]["annotations"].pop("serving.kserve.io/autoscalerClass"),
            set_at("spec.predictor.scaleMetric", "concurrency"),
        ),
        "spec.predictor.scaleMetric",
        "KServe skips its checks without serving.kserve.io/autoscalerClass and the HPA gets no "
        "metric",
    ),
    (
        "hpa-target-percent",
        standard,
        set_at("spec.predictor.scaleTarget", 150),
        "spec.predictor.scaleTarget",
        "the target utilization percentage should be a [1-100] integer (got 150)",
    ),
    (
        "hpa-memory-target",
        standard,
        both(
            set_at("spec.predictor.scaleMetric", "memory"), set_at("spec.predictor.scaleTarget", 0)
        ),
        "spec.predictor.scaleTarget",
        "the target memory should be greater than 1 MiB (got 0)",
    ),
    (
        "standard-scale-to-zero-needs-keda",
        standard,
        both(drop("spec.canary"), set_at("spec.predictor.minReplicas", 0)),
        "spec.predictor.minReplicas",
        "the HPA autoscaler cannot scale to zero and KServe would silently run 1 replica",
    ),
    (
        "keda-scale-metric",
        standard,
        both(
            annotate({"serving.kserve.io/autoscalerClass": "keda"}),
            set_at("spec.predictor.scaleMetric", "cpu"),
        ),
        "spec.predictor.scaleMetric",
        "ScaleMetric is not supported for KEDA",
    ),
    (
        "no-autoscaler-ignores-target",
        standard,
        both(
            annotate({"serving.kserve.io/autoscalerClass": "none"}),
            set_at("spec.predictor.scaleTarget", 50),
        ),
        "spec.predictor.scaleTarget",
        "autoscaler class none runs no autoscaler, so KServe ignores it",
    ),
    (
        "canary-percent-range",
        knative,
        set_at("spec.predictor.canaryTrafficPercent", 120),
        "spec.predictor.canaryTrafficPercent",
        "120 is out of range; Knative refuses traffic outside 0..100",
    ),
    (
        "canary-percent-ignored-in-standard",
        standard,
        set_at("spec.predictor.canaryTrafficPercent", 10),
        "spec.predictor.canaryTrafficPercent",
        "KServe ignores canaryTrafficPercent in Standard mode; use spec.canary[]",
    ),
    (
        "canary-list-needs-standard",
        standard,
        annotate({"serving.kserve.io/deploymentMode": "Knative"}),
        "spec.canary",
        "canary is only supported in Standard deployment mode",
    ),
    (
        "canary-list-without-mode-annotation",
        standard,
        lambda m: m["metadata"]["annotations"].pop("serving.kserve.io/deploymentMode"),
        "spec.canary",
        "canary is only supported in Standard deployment mode",
    ),
    (
        "canary-needs-stable-model",
        standard,
        lambda m: m["spec"]["predictor"].update(
            {"tensorflow": m["spec"]["predictor"].pop("model")}
        ),
        "spec.canary",
        "canary requires a stable predictor with a model",
    ),
    (
        "canary-name-required",
        standard,
        drop("spec.canary.0.predictor.name"),
        "spec.canary[0].predictor.name",
        "canary[0] predictor.name is required",
    ),
    (
        "canary-name-is-stable",
        standard,
        set_at("spec.canary.0.predictor.name", "v1"),
        "spec.canary[0].predictor.name",
        "canary name 'v1' is already used by the stable predictor",
    ),
    (
        "canary-name-duplicate",
        standard,
        lambda m: m["spec"]["canary"].append(copy.deepcopy(m["spec"]["canary"][0])),
        "spec.canary[1].predictor.name",
        "canary name 'v2' is already used by another canary",
    ),
    (
        "canary-traffic-range",
        standard,
        set_at("spec.canary.0.trafficPercent", 101),
        "spec.canary[0].trafficPercent",
        'canary "v2" trafficPercent must be between 0 and 100, got 101',
    ),
    (
        "canary-traffic-sum",
        standard,
        lambda m: m["spec"]["canary"].append(
            {
                "predictor": {**copy.deepcopy(m["spec"]["canary"][0]["predictor"]), "name": "v3"},
                "trafficPercent": 95,
            }
        ),
        "spec.canary",
        "sum of canary trafficPercent values (105) must be <= 100",
    ),
    (
        "canary-fixed-replicas",
        standard,
        set_at("spec.canary.0.predictor.maxReplicas", 3),
        "spec.canary[0].predictor.maxReplicas",
        'canary "v2" must not set maxReplicas (canary uses fixed replicas)',
    ),
    (
        "canary-min-above-stable",
        standard,
        set_at("spec.canary.0.predictor.minReplicas", 3),
        "spec.canary[0].predictor.minReplicas",
        'canary "v2" minReplicas (3) must not exceed stable predictor minReplicas (2)',
    ),
]


@pytest.mark.parametrize(
    ("base", "change", "field", "message"),
    [rule[1:] for rule in RULES],
    ids=[rule[0] for rule in RULES],
)
def test_rule(
    base: Callable[[], Manifest], change: Callable[[Manifest], None], field: str, message: str
) -> None:
    manifest = base()
    admission.admit(manifest)
    change(manifest)
    with pytest.raises(SpecError) as info:
        admission.admit(manifest)
    assert info.value.field == field
    assert message in str(info.value)
    assert str(info.value).startswith(f"{field}: ")


def test_update_cannot_change_the_deployment_mode() -> None:
    old = knative()
    old["status"] = {"deploymentMode": "Serverless"}
    new = knative()
    new["metadata"]["annotations"][admission.DEPLOYMENT_MODE] = "Standard"
    new["metadata"]["annotations"][admission.AUTOSCALER_CLASS] = "hpa"
    for key in (admission.KNATIVE_CLASS,):
        new["metadata"]["annotations"].pop(key)
    admission.admit(new)
    with pytest.raises(SpecError) as info:
        admission.admit(new, old=old)
    assert info.value.field == MODE
    assert "update rejected: deploymentMode cannot be changed from 'Knative' to 'Standard'" in str(
        info.value
    )


def test_update_renaming_the_predictor_needs_a_new_model() -> None:
    old = standard()
    new = copy.deepcopy(old)
    new["spec"]["predictor"]["name"] = "v3"
    with pytest.raises(SpecError) as info:
        admission.admit(new, old=old)
    assert info.value.field == "spec.predictor.name"
    assert "predictor.name change requires a model change (e.g. storageUri)" in str(info.value)
    new["spec"]["predictor"]["model"]["storageUri"] = "gs://b/digits/v3"
    admission.admit(new, old=old)


@pytest.mark.parametrize(
    "change",
    [
        annotate({"serving.kserve.io/deploymentMode": "Serverless"}),
        lambda m: m["metadata"]["annotations"].pop(admission.DEPLOYMENT_MODE),
        set_at("spec.predictor.minReplicas", 0),
        both(set_at("spec.predictor.scaleMetric", "rps"), set_at("spec.predictor.scaleTarget", 5)),
        lambda m: m["spec"]["predictor"].update(
            {"tensorflow": {"storageUri": "gs://b/m", "runtimeVersion": "2.20.0"}},
            model=None,
        ),
        set_at("spec.predictor.model.storageUri", "/mnt/pvc/model"),
    ],
    ids=["legacy-mode", "default-mode", "scale-to-zero", "rps", "legacy-tensorflow", "plain-path"],
)
def test_manifests_kserve_accepts_pass(change: Callable[[Manifest], None]) -> None:
    manifest = knative()
    change(manifest)
    if manifest["spec"]["predictor"].get("model", 1) is None:
        del manifest["spec"]["predictor"]["model"]
    admission.admit(manifest)


def test_keda_may_scale_to_zero_in_standard_mode() -> None:
    manifest = standard()
    del manifest["spec"]["canary"]
    manifest["metadata"]["annotations"][admission.AUTOSCALER_CLASS] = "keda"
    manifest["spec"]["predictor"]["minReplicas"] = 0
    admission.admit(manifest)


def test_a_custom_kserve_container_is_one_implementation() -> None:
    manifest = knative()
    del manifest["spec"]["predictor"]["model"]
    manifest["spec"]["predictor"]["containers"] = [
        {"name": "kserve-container", "image": "tensorflow/serving:2.20.0"}
    ]
    admission.admit(manifest)


def test_admit_refuses_what_is_not_an_object() -> None:
    with pytest.raises(SpecError, match="expected an InferenceService object"):
        admission.admit([])  # type: ignore[arg-type]
