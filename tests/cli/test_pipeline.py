"""``timonel pipeline compile|run``: the pipeline's YAML, typed parameters, and the three places a
run goes. Kubeflow Pipelines and Vertex AI are not reachable here: the kfp.Client path is driven
with a client that records the call, the Vertex path builds the real PipelineJob offline where
the submission would be sent. The local run end to end is tests/kfp/test_local_run.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from google.auth.credentials import AnonymousCredentials

from timonel import cli
from timonel.errors import ClusterUnreachable, SpecError
from timonel.kfp import run as kfp_run
from timonel.kfp import vertex
from timonel.kfp.compile import load_pipeline

ROOT = Path(__file__).resolve().parents[2]
TRAIN_AND_DEPLOY = ROOT / "pipelines" / "train_and_deploy.py"


@pytest.fixture(autouse=True)
def in_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("TIMONEL_COMPONENT_IMAGE", raising=False)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["pipeline", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_compile_writes_the_yaml_the_kubeflow_ui_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "train.yaml"
    code, out, err = run(capsys, "compile", "train_and_deploy", "--output", str(target))
    assert (code, err) == (0, "")
    assert str(target) in out
    assert target.read_text() == (ROOT / "pipelines" / "train_and_deploy.yaml").read_text()


def test_compile_names_the_known_pipelines_for_an_unknown_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run(capsys, "compile", "train_and_serve")
    assert code == 2
    assert "no pipeline 'train_and_serve'" in err
    assert "deploy_saved_model, train_and_deploy" in err


def test_parameters_are_typed_from_the_pipeline() -> None:
    pipeline = load_pipeline(TRAIN_AND_DEPLOY)
    parsed = kfp_run.parse_arguments(
        pipeline,
        ["epochs=2", "canary_percent=30", "allow_breaking=true", "smoke_instances=[[0.5]]"],
    )
    assert parsed == {
        "epochs": 2,
        "canary_percent": 30,
        "allow_breaking": True,
        "smoke_instances": [[0.5]],
    }


@pytest.mark.parametrize(
    ("pair", "said"),
    [
        ("epochs=two", "--param epochs='two': epochs is Integer; give a whole number"),
        ("allow_breaking=yes", "allow_breaking is Boolean; give true or false"),
        ("smoke_instances={}", "smoke_instances is List; give a JSON list"),
        ("replicas=3", "has no parameter 'replicas'; it takes allow_breaking, canary_percent"),
        ("epochs", "--param 'epochs': expected NAME=VALUE"),
    ],
)
def test_a_bad_parameter_says_what_the_pipeline_takes(pair: str, said: str) -> None:
    with pytest.raises(SpecError) as caught:
        kfp_run.parse_arguments(load_pipeline(TRAIN_AND_DEPLOY), [pair])
    assert said in str(caught.value)


@pytest.mark.parametrize(
    "where",
    [[], ["--local", "--vertex"], ["--local", "--kfp-host", "http://kfp"]],
    ids=["none", "local+vertex", "local+kfp"],
)
def test_a_run_goes_to_exactly_one_place(
    where: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "run", "train_and_deploy", *where)
    assert code == 2
    assert "exactly one of --local, --kfp-host URL or --vertex" in err


class RecordingKfpClient:
    """What kfp.Client.create_run_from_pipeline_package was handed."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def create_run_from_pipeline_package(self, pipeline_file: str, **settings: Any) -> Any:
        self.calls.append({"spec": yaml.safe_load(Path(pipeline_file).read_text()), **settings})
        return type("RunPipelineResult", (), {"run_id": "run-1"})()


def test_a_kfp_run_sends_the_freshly_compiled_pipeline_and_typed_arguments() -> None:
    client = RecordingKfpClient()
    result = kfp_run.run_on_kfp(
        TRAIN_AND_DEPLOY,
        {"epochs": 2, "canary_percent": 30},
        host="http://kfp.example:8888",
        experiment="digits",
        client=client,
    )
    assert result.run_id == "run-1"
    (call,) = client.calls
    assert call["spec"]["pipelineInfo"]["name"] == "timonel-train-and-deploy"
    assert call["arguments"] == {"epochs": 2, "canary_percent": 30}
    assert call["experiment_name"] == "digits"


def test_an_unreachable_kfp_host_is_said_with_what_to_try(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ClusterUnreachable, match="cannot reach Kubeflow Pipelines at http://127"):
        kfp_run.run_on_kfp(TRAIN_AND_DEPLOY, {}, host="http://127.0.0.1:9")


def test_vertex_needs_project_region_and_root(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "run", "train_and_deploy", "--vertex", "--project", "p")
    assert code == 2
    assert "--vertex needs --region, --pipeline-root" in err


def test_a_vertex_run_builds_the_pipeline_job(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    built: list[Any] = []

    def build_only(path: Path, *, wait: bool, **settings: Any) -> Any:
        job = vertex.build_job(path, credentials=AnonymousCredentials(), **settings)
        job._gca_resource.name = "projects/p/locations/europe-west4/pipelineJobs/run-1"
        built.append((type(job._gca_resource).to_dict(job._gca_resource), wait))
        return job

    monkeypatch.setattr(vertex, "submit", build_only)
    code, out, err = run(
        capsys, "run", "train_and_deploy", "--vertex", "--project", "p",
        "--region", "europe-west4", "--pipeline-root", "gs://runs/digits",
        "--service-account", "deployer@p.iam.gserviceaccount.com", "--label", "team=ml",
        "-p", "epochs=3", "-p", "repo=gs://models",
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert "submitted to Vertex AI: projects/p/locations/europe-west4/pipelineJobs/run-1" in out
    ((job, wait),) = built
    assert wait is False
    assert job["runtime_config"]["gcs_output_directory"] == "gs://runs/digits"
    assert job["runtime_config"]["parameter_values"] == {"epochs": 3, "repo": "gs://models"}
    assert job["service_account"] == "deployer@p.iam.gserviceaccount.com"
    assert job["labels"]["team"] == "ml"
    assert job["pipeline_spec"]["pipelineInfo"]["name"] == "timonel-train-and-deploy"
