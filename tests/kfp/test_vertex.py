"""The Vertex AI door: the PipelineJob is built offline, and the service's refusals say the fix.

No request reaches Google: jobs are built with anonymous credentials, and the submission's error
handling is driven by the service's own exception types raised where the create call would be.
"""

# no `from __future__ import annotations`: KFP reads the component's annotations as types

from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as google_exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import aiplatform
from kfp import compiler, dsl

from timonel import gcp
from timonel.errors import ApiError, SpecError
from timonel.kfp.vertex import build_job, submit

ROOT = "gs://pipelines-bucket/runs"


@dsl.component(base_image="python:3.11")
def echo(name: str, replicas: int, percent: float) -> str:
    return f"{name} {replicas} {percent}"


@dsl.pipeline(name="deploy-saved-model", description="A pipeline to submit.")
def deploy(model_name: str = "digits", replicas: int = 1, canary_percent: float = 10.0) -> None:
    echo(name=model_name, replicas=replicas, percent=canary_percent)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pipelines") / "deploy_saved_model.yaml"
    compiler.Compiler().compile(deploy, str(path))
    return path


def sent(job: Any) -> dict[str, Any]:
    """The PipelineJob resource the create call would carry, as a dict."""
    resource = job._gca_resource
    return dict(type(resource).to_dict(resource))


def offline(compiled: Path, **settings: Any) -> Any:
    return build_job(
        compiled,
        project="proj",
        region="europe-west4",
        pipeline_root=ROOT,
        credentials=AnonymousCredentials(),
        **settings,
    )


def test_the_job_carries_template_parameters_root_account_and_labels(compiled: Path) -> None:
    job = offline(
        compiled,
        parameters={"model_name": "mnist", "replicas": 2, "canary_percent": 25.0},
        service_account="runner@proj.iam.gserviceaccount.com",
        labels={"team": "ml", "model": "mnist"},
    )

    resource = sent(job)
    assert resource["pipeline_spec"]["pipelineInfo"]["name"] == "deploy-saved-model"
    assert resource["display_name"] == "deploy-saved-model"
    assert resource["runtime_config"]["gcs_output_directory"] == ROOT
    assert resource["runtime_config"]["parameter_values"] == {
        "model_name": "mnist",
        "replicas": 2,
        "canary_percent": 25.0,
    }
    assert resource["service_account"] == "runner@proj.iam.gserviceaccount.com"
    assert resource["labels"] == {"team": "ml", "model": "mnist"}
    assert (job.project, job.location) == ("proj", "europe-west4")
    assert job.job_id.startswith("deploy-saved-model-")


def test_caching_follows_the_compiled_setting_unless_given(compiled: Path) -> None:
    def caching(job: Any) -> Any:
        return sent(job)["pipeline_spec"]["root"]["dag"]["tasks"]["echo"].get("cachingOptions")

    assert caching(offline(compiled)) == {"enableCache": True}
    assert caching(offline(compiled, enable_caching=False)) == {"enableCache": False}
    assert sent(offline(compiled, display_name="Nightly"))["display_name"] == "Nightly"


def test_parameters_the_pipeline_does_not_declare_are_refused(compiled: Path) -> None:
    with pytest.raises(SpecError, match="nope is not found"):
        offline(compiled, parameters={"nope": 1})


@pytest.mark.parametrize(
    ("parameters", "said"),
    [
        (
            {"replicas": "3"},
            "replicas='3' .* is a str, but the pipeline declares it NUMBER_INTEGER",
        ),
        ({"replicas": True}, "declares it NUMBER_INTEGER; pass a int"),
        ({"canary_percent": "10"}, "declares it NUMBER_DOUBLE; pass a int or float"),
        ({"model_name": 7}, "declares it STRING; pass a str"),
    ],
)
def test_parameters_of_the_wrong_type_are_refused_before_sending(
    compiled: Path, parameters: dict[str, Any], said: str
) -> None:
    with pytest.raises(SpecError, match=said):
        offline(compiled, parameters=parameters)


def test_settings_vertex_would_refuse_are_caught_first(compiled: Path, tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="`timonel pipeline compile NAME`"):
        offline(tmp_path / "missing.yaml")
    with pytest.raises(SpecError, match="give --pipeline-root gs://BUCKET/PATH"):
        build_job(
            compiled,
            project="p",
            region="r",
            pipeline_root="/tmp/runs",
            credentials=AnonymousCredentials(),
        )
    with pytest.raises(SpecError, match="label Team='ml' is not a valid Vertex AI label"):
        offline(compiled, labels={"Team": "ml"})


def test_no_google_credentials_says_how_to_log_in(
    compiled: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a key file that is not there fails at once, before google-auth would ask a metadata server
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing-key.json"))

    with pytest.raises(ApiError, match="`gcloud auth application-default login`"):
        submit(compiled, project="proj", region="europe-west4", pipeline_root=ROOT)


@pytest.fixture
def create_call(monkeypatch: pytest.MonkeyPatch) -> list[BaseException]:
    """Anonymous credentials, and a create call that raises the exception put in the list."""
    monkeypatch.setattr(gcp, "default_credentials", AnonymousCredentials)
    raised: list[BaseException] = []

    def create(job: Any, *args: Any, **kwargs: Any) -> None:
        raise raised[0]

    monkeypatch.setattr(aiplatform.PipelineJob, "submit", create)
    return raised


@pytest.mark.parametrize(
    ("refusal", "code", "advice"),
    [
        (
            google_exceptions.PermissionDenied("Permission 'aiplatform.pipelineJobs.create'"),
            403,
            "grant the account roles/aiplatform.user on project proj",
        ),
        (
            google_exceptions.NotFound("Project not found"),
            404,
            "`gcloud services enable aiplatform.googleapis.com --project proj`",
        ),
        (
            google_exceptions.Unauthenticated("Request had invalid authentication credentials"),
            401,
            "`gcloud auth application-default login`",
        ),
        (google_exceptions.ServiceUnavailable("try later"), 503, "try again"),
    ],
)
def test_vertex_refusals_say_what_to_do(
    compiled: Path,
    create_call: list[BaseException],
    refusal: Exception,
    code: int,
    advice: str,
) -> None:
    create_call.append(refusal)

    with pytest.raises(ApiError) as raised:
        submit(compiled, project="proj", region="europe-west4", pipeline_root=ROOT)

    assert raised.value.status.code == code
    assert "cannot run pipeline deploy-saved-model-" in str(raised.value)
    assert "on Vertex AI in projects/proj/locations/europe-west4" in str(raised.value)
    assert advice in str(raised.value)


def test_a_submitted_job_is_returned(compiled: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcp, "default_credentials", AnonymousCredentials)
    submitted: list[Any] = []
    monkeypatch.setattr(aiplatform.PipelineJob, "submit", lambda job: submitted.append(job))

    job = submit(
        compiled,
        project="proj",
        region="europe-west4",
        pipeline_root=ROOT,
        parameters={"replicas": 3},
        service_account="runner@proj.iam.gserviceaccount.com",
    )

    assert submitted == [job]
    assert sent(job)["service_account"] == "runner@proj.iam.gserviceaccount.com"
    assert sent(job)["runtime_config"]["parameter_values"] == {"replicas": 3}
