"""ServingSpec: validated on construction, defaults resolved, read from YAML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from timonel.errors import SpecError
from timonel.spec import (
    Accelerator,
    Autoscaling,
    Canary,
    Model,
    ServingSpec,
    Tuning,
)


def model(**changes: Any) -> Model:
    return Model(**{"name": "digits", "storage_uri": "gs://b/digits/v1", **changes})


def test_runtime_version_defaults_to_the_current_release_or_the_exporting_tensorflow() -> None:
    assert model().runtime_version == "2.20.0"
    assert model(tensorflow_version="2.18.1").runtime_version == "2.20.0"
    assert model(tensorflow_version="2.21.0").runtime_version == "2.21.0"


def test_accelerator_takes_its_type_positionally_and_defaults_shared_clients() -> None:
    assert Accelerator("nvidia-l4", count=2) == Accelerator(type="nvidia-l4", count=2)
    assert Accelerator("nvidia-l4", sharing="mps").max_shared_clients == 2


def test_autoscaler_class_and_gpu_cold_start_settings_resolve_by_mode() -> None:
    assert ServingSpec(model=model()).autoscaling.autoscaler_class == "kpa"
    assert ServingSpec(model=model(), mode="standard").autoscaling.autoscaler_class == "hpa"
    gpu = ServingSpec(
        model=model(),
        accelerator=Accelerator("nvidia-l4"),
        autoscaling=Autoscaling(min_replicas=0),
    )
    assert gpu.autoscaling.progress_deadline == "1800s"
    assert gpu.autoscaling.scale_down_delay == "10m"


@pytest.mark.parametrize(
    ("build", "field", "message"),
    [
        (
            lambda: model(storage_uri="ftp://h/m"),
            "model.storage_uri",
            "StorageURI not supported",
        ),
        (
            lambda: model(runtime_version="2.20.0-gpu"),
            "model.runtime_version",
            "names the GPU image; give the version alone",
        ),
        (
            lambda: model(runtime_version="latest"),
            "model.runtime_version",
            "'latest' is not a TF Serving release tag; expected MAJOR.MINOR.PATCH",
        ),
        (
            lambda: model(runtime_version="2.15.0", tensorflow_version="2.20.0"),
            "model.runtime_version",
            "TF Serving 2.15.0 is older than TensorFlow 2.20.0, which exported the model, and may "
            'fail to load it with "Op type not registered"; use runtime version 2.20.0 or newer',
        ),
        (
            lambda: model(protocol="http"),
            "model.protocol",
            "Input should be 'rest' or 'grpc' (got 'http')",
        ),
        (
            lambda: ServingSpec(model=model(name="Digits")),
            "model.name",
            "a InferenceService name must consist of lower case alphanumeric characters",
        ),
        (
            lambda: ServingSpec(model=model(), namespace="Prod"),
            "namespace",
            "'Prod' is not valid as a namespace",
        ),
        (
            lambda: ServingSpec(model=model(), resources={"cpu": "two"}),
            "resources.cpu",
            "'two' is not a Kubernetes quantity",
        ),
        (
            lambda: ServingSpec(model=model(), resources={"memory": "0Gi"}),
            "resources.memory",
            "'0Gi' is zero; give a positive amount",
        ),
        (
            lambda: ServingSpec(model=model(), canary={"traffic_percent": 150}),
            "canary.traffic_percent",
            "Input should be less than or equal to 100 (got 150)",
        ),
        (
            lambda: ServingSpec(model=model(), autoscaling={"min_replicas": -1}),
            "autoscaling.min_replicas",
            "'MinReplicas' cannot be less than 0",
        ),
        (
            lambda: ServingSpec(model=model(), autoscaling={"scale_metric": "cpu"}),
            "autoscaling.scale_metric",
            "[cpu] is not a supported metric; Knative's autoscaler scales on concurrency or rps",
        ),
        (
            lambda: ServingSpec(model=model(), mode="standard", autoscaling={"min_replicas": 0}),
            "autoscaling.min_replicas",
            "the HPA autoscaler cannot scale to zero",
        ),
        (
            lambda: ServingSpec(model=model(), autoscaling={"autoscaler_class": "keda"}),
            "mode",
            "[keda] is not a supported autoscaler class type in Knative mode; use one of kpa, hpa",
        ),
        (
            lambda: ServingSpec(model=model(), mode="standard", tag_routing=True),
            "tag_routing",
            "is a Knative setting that KServe's Standard mode ignores",
        ),
        (
            lambda: ServingSpec(
                model=model(), annotations={"autoscaling.knative.dev/min-scale": "0"}
            ),
            "annotations[autoscaling.knative.dev/min-scale]",
            "is written from the spec; set autoscaling.min_replicas instead",
        ),
        (
            lambda: ServingSpec(model=model(), labels={"bad key": "x"}),
            "labels[bad key]",
            "'bad key' is not a valid key",
        ),
        (
            lambda: ServingSpec(model=model(), canary=Canary(traffic_percent=10, name="v2")),
            "canary.name",
            "in Knative mode the canary is the new revision of model.storage_uri",
        ),
        (
            lambda: ServingSpec(
                model=model(),
                mode="standard",
                predictor_name="v1",
                canary=Canary(traffic_percent=10, name="v2"),
            ),
            "canary.storage_uri",
            "a Standard-mode canary runs beside the stable predictor and needs its own name",
        ),
        (
            lambda: ServingSpec(
                model=model(),
                mode="standard",
                canary=Canary(traffic_percent=10, name="v2", storage_uri="gs://b/d/v2"),
            ),
            "predictor_name",
            "a Standard-mode canary needs the stable predictor named",
        ),
        (
            lambda: ServingSpec(model=model(), predictor_name="v1"),
            "predictor_name",
            "only Standard mode names predictors",
        ),
        (
            lambda: ServingSpec(model=model(), tuning=Tuning(gpu_memory_fraction=0.5)),
            "tuning.gpu_memory_fraction",
            "caps GPU memory, but no accelerator is set",
        ),
        (
            lambda: Tuning(batching_parameters_file="/mnt/models/b.config"),
            "tuning.batching_parameters_file",
            "TF Serving reads the file only with batching on",
        ),
        (
            lambda: ServingSpec(
                model=model(),
                accelerator=Accelerator("nvidia-l4"),
                autoscaling=Autoscaling(min_replicas=0, progress_deadline="2m"),
            ),
            "autoscaling.progress_deadline",
            "2m is too short for a GPU replica that scales from zero",
        ),
        (
            lambda: Autoscaling(scale_down_delay="2h"),
            "autoscaling.scale_down_delay",
            "2h exceeds Knative's limit for scale-down-delay; use 0s to 1h",
        ),
        (
            lambda: ServingSpec(model=model(), unknown=1),
            "unknown",
            "Extra inputs are not permitted",
        ),
        (
            lambda: Accelerator("nvidia-l4", count=3),
            "accelerator.count",
            "GKE offers nvidia-l4 with 1, 2, 4, 8 GPUs per node, not 3",
        ),
    ],
)
def test_bad_specs_are_refused_on_construction(build: Any, field: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        build()
    assert info.value.field == field
    assert message in str(info.value)


def test_from_yaml_reads_text_and_files(tmp_path: Path) -> None:
    text = "model:\n  name: digits\n  storage_uri: gs://b/digits/v1\nmode: standard\n"
    spec = ServingSpec.from_yaml(text)
    assert spec.mode == "standard" and spec.model.name == "digits"
    path = tmp_path / "spec.yaml"
    path.write_text(spec.to_yaml())
    assert ServingSpec.from_yaml(path) == spec
    assert ServingSpec.from_yaml(str(path)) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model: [unclosed", "spec: not valid YAML"),
        ("- a list", "spec: expected a mapping of ServingSpec attributes, got list"),
        ("mode: knative\n", "model: Field required"),
    ],
)
def test_from_yaml_refuses_bad_documents(text: str, message: str) -> None:
    with pytest.raises(SpecError, match="^" + message.replace("[", r"\[")):
        ServingSpec.from_yaml(text)


def test_a_pod_s_gpu_limit_and_labels_place_the_spec_as_the_pod_would_be() -> None:
    spec = ServingSpec(model=Model(name="digits", storage_uri="gs://b/digits/v1"))
    placed = spec.placed(
        resources={"limits": {"nvidia.com/gpu": "2", "cpu": "1"}},
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4", "pool": "serving"},
        tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    )
    assert placed.accelerator == Accelerator("nvidia-l4", count=2)
    assert placed.node_selector == {"pool": "serving"}
    assert placed.tolerations == [
        {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}
    ]


@pytest.mark.parametrize("resource", ["nvidia-l4", "NVIDIA_L4"])
def test_an_accelerator_type_in_gke_or_vertex_spelling_names_the_gpu(resource: str) -> None:
    spec = ServingSpec(model=Model(name="digits", storage_uri="gs://b/digits/v1"))
    assert spec.placed(resources={"limits": {resource: 1}}).accelerator == Accelerator("nvidia-l4")


def test_a_gpu_limit_without_a_gpu_type_says_which_selector_to_add() -> None:
    spec = ServingSpec(model=Model(name="digits", storage_uri="gs://b/digits/v1"))
    with pytest.raises(SpecError, match=r"selects no cloud\.google\.com/gke-accelerator"):
        spec.placed(resources={"limits": {"nvidia.com/gpu": 1}})


def test_no_pod_settings_leave_the_spec_as_it_is() -> None:
    spec = ServingSpec(model=Model(name="digits", storage_uri="gs://b/digits/v1"))
    assert spec.placed() is spec
