"""Running a compiled Timonel pipeline on Vertex AI Pipelines, with google-cloud-aiplatform.

``build_job`` turns a compiled pipeline (the YAML the Kubeflow UI takes) and its run settings into
an ``aiplatform.PipelineJob`` without touching the network, so what will be sent can be checked
first; ``submit`` does the I/O (credentials, the create call, optionally the wait). Errors from
google-auth and google.api_core become Timonel errors that say what to run or grant.

Nothing here was run against the real Vertex AI service from this project's machines: the build
is tested offline, the submission's error handling with the service's own exception types.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from timonel import gcp
from timonel.errors import ApiError, SpecError, Status

#: Vertex AI's label rules (the same as GCP's): lowercase keys of 1-63 characters starting with
#: a letter; values of at most 63 characters; letters, digits, ``_`` and ``-`` only.
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")

#: The Python values each KFP parameter type takes. Vertex AI accepts a string for a number at
#: creation and fails the run later, so the types are checked here, before anything is sent.
_PARAMETER_TYPES: dict[str, tuple[type, ...]] = {
    "STRING": (str,),
    "NUMBER_INTEGER": (int,),
    "NUMBER_DOUBLE": (int, float),
    "BOOLEAN": (bool,),
    "LIST": (list,),
    "STRUCT": (dict,),
}


def _check(
    pipeline_yaml_path: str | Path, pipeline_root: str, labels: dict[str, str] | None
) -> None:
    if not Path(pipeline_yaml_path).is_file():
        raise SpecError(
            f"no compiled pipeline at {pipeline_yaml_path}; compile it first "
            "(`timonel pipeline compile NAME` writes the YAML)"
        )
    if not pipeline_root.startswith("gs://"):
        raise SpecError(
            f"the pipeline root {pipeline_root!r} is not a Cloud Storage URI; Vertex AI writes "
            "the pipeline's artifacts to a bucket: give --pipeline-root gs://BUCKET/PATH"
        )
    for key, value in (labels or {}).items():
        if not _LABEL_KEY.fullmatch(key) or not _LABEL_VALUE.fullmatch(value):
            raise SpecError(
                f"label {key}={value!r} is not a valid Vertex AI label; keys start with a "
                "lowercase letter, and keys and values hold at most 63 lowercase letters, "
                "digits, '_' or '-'"
            )


def _check_types(job: Any, parameters: dict[str, Any], pipeline_yaml_path: str | Path) -> None:
    spec = type(job._gca_resource).to_dict(job._gca_resource)["pipeline_spec"]
    declared = spec["root"].get("inputDefinitions", {}).get("parameters", {})
    for name, value in parameters.items():
        kind = declared[name]["parameterType"]  # unknown names were refused when building
        wanted = _PARAMETER_TYPES.get(kind, (object,))
        is_bool = isinstance(value, bool)
        if not isinstance(value, wanted) or (is_bool and bool not in wanted):
            raise SpecError(
                f"parameter {name}={value!r} of {pipeline_yaml_path} is a "
                f"{type(value).__name__}, but the pipeline declares it {kind}; pass a "
                f"{' or '.join(t.__name__ for t in wanted)}"
            )


def build_job(
    pipeline_yaml_path: str | Path,
    *,
    project: str,
    region: str,
    pipeline_root: str,
    parameters: dict[str, Any] | None = None,
    service_account: str | None = None,
    labels: dict[str, str] | None = None,
    display_name: str | None = None,
    enable_caching: bool | None = None,
    credentials: Any = None,
) -> Any:
    """The ``aiplatform.PipelineJob`` that would run the compiled pipeline, built offline.

    ``parameters`` must be inputs the pipeline declares; ``enable_caching`` None keeps each task's
    compiled setting. ``service_account`` is the account the run acts as (the submitter needs
    ``iam.serviceAccounts.actAs`` on it); the project's default compute account when None.
    ``credentials`` default to the application default credentials.
    """
    from google.cloud import aiplatform

    _check(pipeline_yaml_path, pipeline_root, labels)
    if credentials is None:
        credentials = gcp.default_credentials()
    try:
        job = aiplatform.PipelineJob(
            display_name=display_name or Path(pipeline_yaml_path).stem.replace("_", "-"),
            template_path=str(pipeline_yaml_path),
            pipeline_root=pipeline_root,
            parameter_values=dict(parameters or {}),
            enable_caching=enable_caching,
            labels=dict(labels or {}),
            credentials=credentials,
            project=project,
            location=region,
        )
    except ValueError as exc:
        # the template's declared inputs, a parameter's type, or the generated job ID
        raise SpecError(
            f"cannot run {pipeline_yaml_path} with these settings: {exc}; pass only parameters "
            "the pipeline declares, with their declared types (`timonel pipeline compile` "
            "shows them in the YAML's root.inputDefinitions)"
        ) from exc
    _check_types(job, parameters or {}, pipeline_yaml_path)
    if service_account:
        # PipelineJob.submit takes the account too, but a job that carries it can be checked
        job._gca_resource.service_account = service_account
    return job


def submit(
    pipeline_yaml_path: str | Path,
    *,
    project: str,
    region: str,
    pipeline_root: str,
    parameters: dict[str, Any] | None = None,
    service_account: str | None = None,
    labels: dict[str, str] | None = None,
    wait: bool = False,
) -> Any:
    """Create a Vertex AI pipeline run of the compiled pipeline; with ``wait``, until it ends.

    Returns the submitted ``aiplatform.PipelineJob`` (its ``resource_name`` and the console link
    are in ``job._dashboard_uri()``).
    """
    from google.api_core import exceptions as google_exceptions
    from google.auth import exceptions as auth_exceptions

    job = build_job(
        pipeline_yaml_path,
        project=project,
        region=region,
        pipeline_root=pipeline_root,
        parameters=parameters,
        service_account=service_account,
        labels=labels,
    )
    where = f"projects/{project}/locations/{region}"
    try:
        job.submit()
        if wait:
            job.wait()
    except google_exceptions.GoogleAPICallError as exc:
        raise gcp.refused(
            int(exc.code or 0),
            exc.message or str(exc),
            doing=f"run pipeline {job.job_id} on Vertex AI in {where}",
            forbidden=(
                f"grant the account roles/aiplatform.user on project {project}, and "
                "roles/iam.serviceAccountUser on the service account the run acts as"
            ),
            not_found=(
                f"check the project and region, and that the Vertex AI API is enabled "
                f"(`gcloud services enable aiplatform.googleapis.com --project {project}`)"
            ),
        ) from exc
    except google_exceptions.RetryError as exc:
        raise ApiError(
            f"cannot reach Vertex AI in {where} ({exc}); check the network and try again",
            status=Status(code=503, reason="ServiceUnavailable", message=str(exc)),
        ) from exc
    except auth_exceptions.GoogleAuthError as exc:
        raise ApiError(
            f"the Google credentials were refused while running pipeline {job.job_id} ({exc}); "
            "run `gcloud auth application-default login` again, or check the service "
            "account key in GOOGLE_APPLICATION_CREDENTIALS",
            status=Status(code=401, reason="Unauthenticated", message=str(exc)),
        ) from exc
    except RuntimeError as exc:  # PipelineJob.wait: the run ended FAILED or CANCELLED
        raise ApiError(
            f"pipeline run {job.resource_name} ended without success: {exc}; its tasks' logs "
            f"are in the Vertex AI console ({job._dashboard_uri()})",
            status=Status(code=0, reason="PipelineFailed", message=str(exc)),
        ) from exc
    return job
