"""The compiled components and pipelines are current, load, compile inside a new pipeline, and
carry typed parameters with defaults."""

from pathlib import Path

import pytest
from kfp import compiler, components, dsl

from timonel.kfp.compile import COMPONENT_NAMES, compile_components, compile_pipeline

ROOT = Path(__file__).resolve().parents[2]
PIPELINES = sorted((ROOT / "pipelines").glob("*.py"))


@pytest.fixture(autouse=True)
def published_image(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIMONEL_COMPONENT_IMAGE", raising=False)


def test_checked_in_components_are_what_make_components_writes(tmp_path: Path) -> None:
    for written in compile_components(tmp_path):
        name = written.parent.name
        checked_in = ROOT / "components" / name / "component.yaml"
        assert checked_in.read_text() == written.read_text(), f"run `make components` ({name})"


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.stem)
def test_checked_in_pipelines_are_what_make_components_writes(path: Path, tmp_path: Path) -> None:
    written = compile_pipeline(path, tmp_path / "out.yaml")
    assert path.with_suffix(".yaml").read_text() == written.read_text(), "run `make components`"


#: What each component needs from a pipeline: artifacts by input name, then parameters.
_ARGUMENTS: dict[str, tuple[dict[str, type], dict[str, object]]] = {
    "package_model": ({"saved_model": dsl.Model}, {"name": "digits", "repo": "gs://m"}),
    "validate_model": ({"release": dsl.Model}, {}),
    "render_inference_service": ({"release": dsl.Model}, {}),
    "deploy_inference_service": ({"manifest": dsl.Artifact}, {}),
    "promote": ({}, {"name": "digits"}),
    "rollback": ({}, {"name": "digits"}),
    "smoke_test": (
        {},
        {
            "model_name": "digits",
            "rest_url": "http://x",
            "grpc_target": "x:80",
            "instances": [[0.0]],
        },
    ),
    "progressive_rollout": ({"release": dsl.Model}, {"name": "digits", "steps": "10,50,100"}),
}


@pytest.mark.parametrize("name", COMPONENT_NAMES)
def test_each_component_loads_and_compiles_in_a_new_pipeline(name: str, tmp_path: Path) -> None:
    path = ROOT / "components" / name / "component.yaml"
    loaded = components.load_component_from_file(str(path))
    assert loaded.component_spec.implementation.container.image.startswith("ghcr.io/timonel/")
    assert loaded.description
    artifacts, parameters = _ARGUMENTS[name]

    @dsl.pipeline(name="uses-" + name.replace("_", "-"))
    def uses() -> None:
        imported = {
            key: dsl.importer(artifact_uri="gs://b/digits/v1", artifact_class=kind).output
            for key, kind in artifacts.items()
        }
        loaded(**imported, **parameters)

    compiler.Compiler().compile(uses, str(tmp_path / "uses.yaml"))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "train_and_deploy.yaml",
            {
                "repo": ("STRING", "gs://my-models"),
                "epochs": ("NUMBER_INTEGER", 5),
                "canary_percent": ("NUMBER_INTEGER", 0),
                "gke_cluster": ("STRING", ""),
                "gpu_count": ("NUMBER_INTEGER", 1),
                "min_replicas": ("NUMBER_INTEGER", 1),
                "max_replicas": ("NUMBER_INTEGER", 3),
                "allow_breaking": ("BOOLEAN", False),
                "train_gpu": ("STRING", ""),
                "rollout_steps": ("STRING", ""),
                "rollout_interval": ("STRING", "60s"),
            },
        ),
        (
            "deploy_saved_model.yaml",
            {
                "saved_model_uri": ("STRING", "gs://my-bucket/exports/digits"),
                "canary_percent": ("NUMBER_INTEGER", 0),
                "gke_project": ("STRING", ""),
                "min_replicas": ("NUMBER_INTEGER", 1),
                "allow_breaking": ("BOOLEAN", False),
            },
        ),
    ],
)
def test_pipeline_parameters_are_typed_described_and_defaulted(
    path: str, expected: dict[str, tuple[str, object]]
) -> None:
    import yaml

    spec = yaml.safe_load((ROOT / "pipelines" / path).read_text())
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    for name, parameter in parameters.items():
        assert "defaultValue" in parameter, name
        assert parameter.get("description"), name
    for name, (kind, default) in expected.items():
        assert parameters[name]["parameterType"] == kind, name
        assert parameters[name]["defaultValue"] == default, name
    loaded = components.load_component_from_file(str(ROOT / "pipelines" / path))
    assert loaded.description
