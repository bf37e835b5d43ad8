"""The accelerator, node selector and tolerations set on the render task reach the
InferenceService, given to the component the way KFP's driver passes them."""

from pathlib import Path

import pytest
import yaml
from kfp import compiler, dsl, kubernetes

import timonel
from timonel.kfp import components


def test_task_settings_compile_into_the_passthrough_the_driver_reads(tmp_path: Path) -> None:
    @dsl.pipeline(name="placed")
    def placed() -> None:
        release = dsl.importer(artifact_uri="gs://b/digits/v1", artifact_class=dsl.Model)
        task = components.render_inference_service(release=release.output)
        task.set_accelerator_type("nvidia-l4").set_accelerator_limit(1)
        kubernetes.add_node_selector(task, label_key="pool", label_value="serving")
        kubernetes.add_toleration(task, key="dedicated", operator="Exists", effect="NoSchedule")

    compiler.Compiler().compile(placed, str(tmp_path / "placed.yaml"))
    documents = list(yaml.safe_load_all((tmp_path / "placed.yaml").read_text()))
    spec = documents[0]
    passthroughs = spec["components"]["comp-render-inference-service"]["taskConfigPassthroughs"]
    assert [p["field"] for p in passthroughs] == [
        "RESOURCES",
        "KUBERNETES_NODE_SELECTOR",
        "KUBERNETES_TOLERATIONS",
    ]
    executor = spec["deploymentSpec"]["executors"]["exec-render-inference-service"]
    assert executor["container"]["resources"]["accelerator"]["resourceType"] == "nvidia-l4"
    kube = documents[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert kube["exec-render-inference-service"]["nodeSelector"]["labels"] == {"pool": "serving"}


@pytest.mark.slow
def test_the_task_s_gpu_node_pool_and_taint_reach_the_inference_service(
    tmp_path: Path,
) -> None:
    import tensorflow as tf

    model = tf.keras.Sequential([tf.keras.Input((2,), name="x"), tf.keras.layers.Dense(1)])
    release = timonel.package(model, name="placed", repo=f"file://{tmp_path}/models", version=1)
    artifact = dsl.Model(uri=release.uri)
    out = dsl.Artifact(uri=str(tmp_path / "manifest"))
    out.path = str(tmp_path / "manifest.yaml")  # type: ignore[misc]  # a local path, as KFP's executor sets it
    config = dsl.TaskConfig(
        resources={"limits": {"nvidia.com/gpu": "1", "cpu": "1"}},
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4", "pool": "serving"},
        tolerations=[{"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}],
    )
    components.render_inference_service.python_func(
        release=artifact, manifest=out, task_config=config
    )
    predictor = yaml.safe_load(Path(out.path).read_text())["spec"]["predictor"]
    assert predictor["nodeSelector"] == {
        "cloud.google.com/gke-accelerator": "nvidia-l4",
        "pool": "serving",
    }
    assert {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"} in predictor[
        "tolerations"
    ]
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert predictor["model"]["runtimeVersion"].endswith("-gpu")
