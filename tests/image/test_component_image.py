"""The component image: built by `make image`, it runs a KFP component as KFP's launcher would.

Opt-in (`pytest -m image`): building installs TensorFlow into the image and takes minutes. The
component's command is the one KFP compiles, with its placeholders filled by ``kfp.local``'s own
executor-input code, and it runs in a container made from the image as the image's user, with
the task's output directory mounted as a Kubeflow pod's would be.
"""

# no `from __future__ import annotations`: KFP reads the component's annotations as types

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kfp import dsl
from kfp.dsl import Artifact, Output
from kfp.local import executor_input_utils, executor_output_utils, placeholder_utils

from timonel.kfp.image import COMPONENT_IMAGE

pytestmark = [pytest.mark.image, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[2]
BUILDAH = ["buildah", "--storage-driver", "vfs"]


@dsl.component(base_image=COMPONENT_IMAGE, install_kfp_package=False)
def render_in_image(model_name: str, storage_uri: str, manifest: Output[Artifact]) -> str:
    """Render an InferenceService with the image's Timonel; report what the image holds."""
    import json
    import os

    import gcsfs
    import google.cloud.aiplatform
    import s3fs
    import tensorflow as tf
    import yaml

    import timonel
    import timonel.kfp

    spec = timonel.ServingSpec(model=timonel.Model(name=model_name, storage_uri=storage_uri))
    with open(manifest.path, "w") as out:
        yaml.safe_dump(timonel.render(spec), out)
    return json.dumps(
        {
            "uid": os.getuid(),
            "timonel": timonel.__version__,
            "tensorflow": tf.__version__,
            "aiplatform": google.cloud.aiplatform.__version__,
            "buckets": [gcsfs.__name__, s3fs.__name__],
            "image": timonel.kfp.COMPONENT_IMAGE,
        }
    )


@pytest.fixture(scope="module")
def image() -> str:
    subprocess.run(["make", "image"], cwd=ROOT, check=True)
    return COMPONENT_IMAGE


def run_in_image(image: str, component: Any, arguments: dict[str, Any], root: Path) -> Any:
    """Run ``component`` in a container of ``image`` as KFP's launcher does; return its outputs."""
    pipeline_spec = component.pipeline_spec
    component_spec = next(iter(pipeline_spec.components.values()))
    executor = next(iter(pipeline_spec.deployment_spec["executors"].values()))
    container = executor["container"]
    task_root = executor_input_utils.construct_local_task_root(
        pipeline_root=str(root), pipeline_resource_name="image-test", task_resource_name="task"
    )
    executor_input = executor_input_utils.construct_executor_input(
        component_spec=component_spec,
        arguments=arguments,
        task_root=task_root,
        block_input_artifact=True,
    )
    command = placeholder_utils.replace_placeholders(
        full_command=[*container["command"], *container["args"]],
        executor_input_dict=executor_input_utils.executor_input_to_dict(
            executor_input=executor_input, component_spec=component_spec
        ),
        pipeline_resource_name="image-test",
        task_resource_name="task",
        pipeline_root=str(root),
        unique_pipeline_id="image-test",
    )
    assert container["image"] == image
    made = subprocess.run(
        [*BUILDAH, "from", "--pull-never", image], check=True, capture_output=True, text=True
    )
    name = made.stdout.strip()
    try:
        mount = f"{root}:{root}"
        subprocess.run(
            [*BUILDAH, "run", "--isolation", "chroot", "--volume", mount, name, "--", *command],
            check=True,
            timeout=600,
        )
    finally:
        subprocess.run([*BUILDAH, "rm", name], check=True, capture_output=True)
    return executor_output_utils.get_outputs_for_task(
        executor_input=executor_input, component_spec=component_spec
    )


def test_a_component_runs_in_the_image_as_its_user(image: str, tmp_path: Path) -> None:
    root = tmp_path / "pipeline-root"
    root.mkdir()
    os.chmod(root, 0o777)  # the image's user (uid 1000) writes the task's outputs here

    outputs = run_in_image(
        image,
        render_in_image,
        {"model_name": "digits", "storage_uri": "gs://models/digits/v1"},
        root,
    )

    facts = json.loads(outputs["Output"])
    assert facts["uid"] == 1000
    assert facts["image"] == image
    assert (facts["tensorflow"], facts["aiplatform"]) == ("2.21.0", "2.7.0")
    manifest = Path(outputs["manifest"].path).read_text()
    assert "kind: InferenceService" in manifest
    assert "gs://models/digits/v1" in manifest
