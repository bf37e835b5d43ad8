"""ServingSpec → InferenceService and back, checked against the real KServe CRD schema."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from timonel.errors import SpecError
from timonel.gke import catalog
from timonel.kserve import admission, vocabulary
from timonel.kserve import render as isvc
from timonel.kserve.crd import Schema
from timonel.spec import (
    Accelerator,
    Autoscaling,
    Canary,
    Model,
    Resources,
    ServingSpec,
    Tuning,
)


@pytest.fixture(scope="session")
def crd(shared_dir: Path) -> Schema:
    return Schema.load_crd(shared_dir / "kserve" / "serving.kserve.io_inferenceservices.yaml")


def rendered(spec: ServingSpec, crd: Schema) -> dict[str, Any]:
    """Render, and prove the manifest is one the CRD schema takes without pruning anything."""
    manifest = isvc.render(spec)
    assert crd.errors(manifest) == []
    return manifest


def base(**changes: Any) -> ServingSpec:
    data: dict[str, Any] = {"model": Model(name="digits", storage_uri="gs://b/digits/v1")}
    data.update(changes)
    return ServingSpec(**data)


def test_cpu_model_uses_predictor_model_with_the_tensorflow_format(crd: Schema) -> None:
    manifest = rendered(base(), crd)
    predictor = manifest["spec"]["predictor"]
    assert "tensorflow" not in predictor
    assert predictor["model"]["modelFormat"] == {"name": "tensorflow"}
    assert predictor["model"]["runtimeVersion"] == "2.20.0"
    assert predictor["model"]["protocolVersion"] == "v1"
    assert predictor["model"]["resources"]["requests"] == predictor["model"]["resources"]["limits"]
    assert manifest["metadata"]["annotations"][admission.DEPLOYMENT_MODE] == "Knative"
    assert predictor["minReplicas"] == 1


def test_gpu_model_gets_the_gpu_image_limits_selector_and_tolerations(
    crd: Schema,
) -> None:
    spec = base(accelerator=Accelerator("nvidia-l4", count=2, spot=True, autopilot=True))
    predictor = rendered(spec, crd)["spec"]["predictor"]
    model = predictor["model"]
    assert model["runtimeVersion"] == "2.20.0-gpu"
    assert model["resources"]["limits"][vocabulary.GPU_RESOURCE] == "2"
    assert model["resources"]["requests"] == model["resources"]["limits"]
    assert predictor["nodeSelector"] == {
        "cloud.google.com/gke-accelerator": "nvidia-l4",
        "cloud.google.com/gke-accelerator-count": "2",
        "cloud.google.com/gke-spot": "true",
    }
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in predictor[
        "tolerations"
    ]


def test_gpu_scale_to_zero_waits_long_enough_for_a_node(crd: Schema) -> None:
    spec = base(accelerator=Accelerator("nvidia-tesla-t4"), autoscaling=Autoscaling(min_replicas=0))
    manifest = rendered(spec, crd)
    annotations = manifest["metadata"]["annotations"]
    assert manifest["spec"]["predictor"]["minReplicas"] == 0
    assert annotations[admission.PROGRESS_DEADLINE] == "1800s"
    assert annotations[admission.SCALE_DOWN_DELAY] == "10m"
    assert annotations[admission.KNATIVE_CLASS] == admission.KPA_CLASS


def test_knative_canary_is_a_traffic_percent_with_tag_routing(crd: Schema) -> None:
    manifest = rendered(base(canary=Canary(traffic_percent=25), tag_routing=True), crd)
    assert manifest["spec"]["predictor"]["canaryTrafficPercent"] == 25
    assert "canary" not in manifest["spec"]
    assert manifest["metadata"]["annotations"][admission.TAG_ROUTING] == "true"


def test_standard_canary_is_a_canary_entry_with_mode_and_class_written(
    crd: Schema,
) -> None:
    spec = base(
        mode="standard",
        predictor_name="v1",
        autoscaling=Autoscaling(min_replicas=2, max_replicas=5, scale_metric="cpu"),
        canary=Canary(traffic_percent=10, name="v2", storage_uri="gs://b/digits/v2"),
    )
    manifest = rendered(spec, crd)
    annotations = manifest["metadata"]["annotations"]
    assert annotations[admission.DEPLOYMENT_MODE] == "Standard"
    assert annotations[admission.AUTOSCALER_CLASS] == "hpa"
    assert "canaryTrafficPercent" not in manifest["spec"]["predictor"]
    assert manifest["spec"]["predictor"]["name"] == "v1"
    assert manifest["spec"]["canary"] == [
        {
            "predictor": {
                "name": "v2",
                "model": {
                    "name": "kserve-container",
                    "modelFormat": {"name": "tensorflow"},
                    "storageUri": "gs://b/digits/v2",
                },
            },
            "trafficPercent": 10,
        }
    ]


def test_grpc_adds_the_h2c_port_and_tuning_becomes_flags(crd: Schema) -> None:
    spec = base(
        model=Model(name="digits", storage_uri="gs://b/d/v1", protocol="grpc"),
        accelerator=Accelerator("nvidia-l4"),
        tuning=Tuning(
            batching=True,
            batching_parameters_file="/mnt/models/batching.config",
            rest_api_timeout_ms=5000,
            gpu_memory_fraction=0.5,
            warmup=False,
        ),
    )
    model = rendered(spec, crd)["spec"]["predictor"]["model"]
    assert model["protocolVersion"] == "grpc-v1"
    assert model["ports"] == [{"containerPort": 9000, "name": "h2c", "protocol": "TCP"}]
    assert model["args"] == [
        "--enable_batching=true",
        "--batching_parameters_file=/mnt/models/batching.config",
        "--rest_api_timeout_in_ms=5000",
        "--per_process_gpu_memory_fraction=0.5",
        "--enable_model_warmup=false",
    ]


def test_yaml_and_json_read_back_to_the_same_manifest() -> None:
    manifest = isvc.render(base(labels={"team": "ml"}))
    assert yaml.safe_load(isvc.to_yaml(manifest)) == manifest
    assert yaml.safe_load(isvc.to_json(manifest)) == manifest
    assert isvc.to_yaml(manifest).startswith("apiVersion: serving.kserve.io/v1beta1\nkind:")


# --- reading manifests back ---------------------------------------------------------------------


def test_a_manifest_from_a_cluster_reads_back_ignoring_server_fields() -> None:
    spec = base(accelerator=Accelerator("nvidia-l4"))
    manifest = isvc.render(spec)
    manifest["metadata"].update(uid="1", resourceVersion="7", generation=2, finalizers=["x"])
    manifest["status"] = {"deploymentMode": "Knative", "conditions": []}
    assert isvc.from_manifest(manifest) == spec


def test_the_legacy_tensorflow_predictor_reads_as_the_model_form() -> None:
    manifest = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "flowers"},
        "spec": {"predictor": {"tensorflow": {"storageUri": "gs://kfserving-examples/flowers"}}},
    }
    spec = isvc.from_manifest(manifest)
    assert spec.model.storage_uri == "gs://kfserving-examples/flowers"
    assert spec.mode == "knative" and spec.namespace == "default"
    assert "tensorflow" not in isvc.render(spec)["spec"]["predictor"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (
            lambda m: m["spec"]["predictor"].update(affinity={}),
            "spec.predictor.affinity",
            "a ServingSpec does not describe this field",
        ),
        (
            lambda m: m["spec"]["predictor"]["model"].update(args=["--xla_cpu_compilation=true"]),
            "spec.predictor.model.args[0]",
            "TF Serving flag '--xla_cpu_compilation=true'",
        ),
        (
            lambda m: m["spec"]["predictor"]["model"].update(modelFormat={"name": "onnx"}),
            "spec.predictor.model.modelFormat.name",
            "'onnx' is not served by Timonel",
        ),
        (
            lambda m: m["spec"]["predictor"].update(tolerations=[{"key": "a", "colour": "b"}]),
            "tolerations[0]",
            "'colour' is not a field of a Kubernetes toleration",
        ),
        (
            lambda m: m.update(kind="Deployment"),
            "kind",
            "expected serving.kserve.io/v1beta1 InferenceService",
        ),
    ],
)
def test_fields_a_spec_cannot_hold_are_refused_not_dropped(
    change: Any, field: str, message: str
) -> None:
    manifest = isvc.render(base())
    change(manifest)
    with pytest.raises(SpecError) as info:
        isvc.from_manifest(manifest)
    assert info.value.field == field
    assert message in str(info.value)


def test_a_node_pool_and_its_taint_are_written_after_the_gpus_and_read_back() -> None:
    spec = base().replace(
        accelerator=Accelerator("nvidia-l4", spot=True),
        node_selector={"pool": "inference"},
        tolerations=[
            {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
        ],
    )
    predictor = isvc.render(spec)["spec"]["predictor"]
    assert predictor["nodeSelector"] == {
        "cloud.google.com/gke-accelerator": "nvidia-l4",
        "cloud.google.com/gke-spot": "true",
        "pool": "inference",
    }
    assert [t["key"] for t in predictor["tolerations"]] == [
        "nvidia.com/gpu",
        "cloud.google.com/gke-spot",
        "dedicated",
    ]
    assert isvc.from_manifest(isvc.render(spec)) == spec


def test_gke_gpu_labels_belong_to_the_accelerator_not_the_node_selector() -> None:
    with pytest.raises(SpecError, match="set accelerator"):
        base().replace(node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"})


# --- round trip ---------------------------------------------------------------------------------

_NAMES = st.from_regex(r"[a-z][a-z0-9]{0,12}(-[a-z0-9]{1,8})?", fullmatch=True)
_URIS = st.builds(
    lambda scheme, path: f"{scheme}{path}",
    st.sampled_from(["gs://bucket/", "s3://bucket/", "pvc://claim/", "https://h.example/", "/m/"]),
    st.from_regex(r"[a-z0-9]{1,8}/v[0-9]{1,3}", fullmatch=True),
)
_VERSIONS = st.builds(
    lambda minor, patch: f"2.{minor}.{patch}", st.integers(0, 30), st.integers(0, 3)
)


@st.composite
def accelerators(draw: st.DrawFn) -> Accelerator:
    gpu = draw(st.sampled_from([g for g in catalog.CATALOG.values() if not g.retired]))
    options: dict[str, Any] = {"spot": draw(st.booleans()), "autopilot": draw(st.booleans())}
    kind = draw(st.sampled_from(["plain", "time-sharing", "mps", "mig"]))
    if kind == "mig" and gpu.mig_partitions:
        options["mig_partition"] = draw(st.sampled_from(sorted(gpu.mig_partitions)))
        return Accelerator(gpu.name, **options)
    if kind in ("time-sharing", "mps"):
        clients = draw(st.integers(2, 48))
        count = 1 if kind == "time-sharing" else draw(st.integers(1, clients))
        return Accelerator(
            gpu.name, count=count, sharing=kind, max_shared_clients=clients, **options
        )
    return Accelerator(gpu.name, count=draw(st.sampled_from(gpu.counts)), **options)


@st.composite
def specs(draw: st.DrawFn) -> ServingSpec:
    mode = draw(st.sampled_from(["knative", "standard"]))
    tensorflow = draw(st.none() | _VERSIONS)
    model = Model(
        name=draw(_NAMES),
        storage_uri=draw(_URIS),
        runtime_version=draw(st.none() | st.just("2.30.0")),
        protocol=draw(st.sampled_from(["rest", "grpc"])),
        tensorflow_version=tensorflow,
    )
    accelerator = draw(st.none() | accelerators())
    maximum = draw(st.none() | st.integers(0, 20))
    floor = 0
    if mode == "knative":
        klass = draw(st.sampled_from(["kpa", "hpa"]))
        metrics = ["concurrency", "rps"] if klass == "kpa" else ["cpu", "memory"]
        floor = 0 if klass == "kpa" else 1
    else:
        klass = draw(st.sampled_from(["hpa", "keda", "external", "none"]))
        metrics = ["cpu", "memory"] if klass == "hpa" else []
        floor = 0 if klass == "keda" else 1
    minimum = draw(st.integers(floor, 5 if not maximum else max(floor, min(5, maximum))))
    metric = draw(st.none() | st.sampled_from(metrics)) if metrics else None
    target = draw(st.none() | st.integers(1, 100)) if metrics else None
    knative = mode == "knative" and klass == "kpa"
    delays = st.none() | st.sampled_from(["30s", "5m", "1h"])
    scaling = Autoscaling(
        min_replicas=minimum,
        max_replicas=maximum,
        scale_metric=metric,
        scale_target=target,
        container_concurrency=draw(st.none() | st.integers(0, 64)),
        autoscaler_class=klass,
        scale_down_delay=draw(delays) if knative else None,
        initial_scale=draw(st.none() | st.integers(0, 3)) if mode == "knative" else None,
        progress_deadline=draw(st.none() | st.sampled_from(["900s", "20m"]))
        if mode == "knative"
        else None,
    )
    canary = None
    predictor_name = None
    if draw(st.booleans()):
        percent = draw(st.integers(0, 100))
        if mode == "knative":
            canary = Canary(traffic_percent=percent)
        else:
            predictor_name = "stable"
            canary = Canary(
                traffic_percent=percent,
                name="next",
                storage_uri=draw(_URIS),
                min_replicas=draw(st.none() | st.integers(0, minimum)),
            )
    batching = draw(st.booleans())
    tuning = Tuning(
        batching=batching,
        batching_parameters_file=draw(st.none() | st.just("/mnt/models/batching.config"))
        if batching
        else None,
        rest_api_timeout_ms=draw(st.none() | st.integers(1, 600000)),
        gpu_memory_fraction=draw(st.none() | st.sampled_from([0.25, 0.5, 1.0]))
        if accelerator
        else None,
        warmup=draw(st.booleans()),
    )
    keys = st.from_regex(r"(example\.com/)?[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
    return ServingSpec(
        model=model,
        resources=Resources(
            cpu=draw(st.sampled_from(["1", "500m", "4"])),
            memory=draw(st.sampled_from(["2Gi", "512Mi", "16G"])),
        ),
        accelerator=accelerator,
        autoscaling=scaling,
        canary=canary,
        mode=mode,
        service_account=draw(st.none() | _NAMES),
        tuning=tuning,
        namespace=draw(_NAMES),
        labels=draw(st.dictionaries(keys, _NAMES, max_size=2)),
        annotations=draw(st.dictionaries(keys, st.text(max_size=20), max_size=2)),
        tag_routing=draw(st.booleans()) if mode == "knative" else False,
        predictor_name=predictor_name,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs())
def test_round_trip_spec_manifest_spec_is_identity(spec: ServingSpec) -> None:
    manifest = isvc.render(spec)
    assert isvc.from_manifest(copy.deepcopy(manifest)) == spec
    assert isvc.render(isvc.from_manifest(manifest)) == manifest


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs())
def test_every_generated_manifest_fits_the_crd(spec: ServingSpec, crd: Schema) -> None:
    rendered(spec, crd)
