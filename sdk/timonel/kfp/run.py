"""Running a Timonel pipeline: on this machine against ``timonel local`` (kfp.local), on a
Kubeflow Pipelines server (kfp.Client), or on Vertex AI Pipelines (``timonel.kfp.vertex``).

Arguments arrive as ``NAME=VALUE`` text (the command line) and are typed here from the
pipeline's own input definitions, so a wrong name or value is refused before anything runs.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from timonel.errors import ApiError, ClusterUnreachable, SpecError, Status
from timonel.kfp.compile import compile_pipeline, load_pipeline
from timonel.local import Home, LocalStatus
from timonel.local import up as local_up

#: How a text value becomes each KFP parameter type, and what to give when it cannot.
_PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "String": (str, "any text"),
    "Integer": (int, "a whole number"),
    "Float": (float, "a number"),
    "Boolean": (lambda text: {"true": True, "false": False}[text.lower()], "true or false"),
    "List": (json.loads, "a JSON list"),
    "Dict": (json.loads, "a JSON object"),
}
_JSON_KINDS = {"List": list, "Dict": dict}


def parse_arguments(pipeline: Any, pairs: Sequence[str]) -> dict[str, Any]:
    """``NAME=VALUE`` texts as the typed arguments of ``pipeline`` (a ``@dsl.pipeline``)."""
    inputs = pipeline.component_spec.inputs or {}
    arguments: dict[str, Any] = {}
    for pair in pairs:
        name, equals, text = pair.partition("=")
        if not equals:
            raise SpecError(f"--param {pair!r}: expected NAME=VALUE", field="param")
        if name not in inputs:
            raise SpecError(
                f"--param {name}: {pipeline.name} has no parameter {name!r}; it takes "
                f"{', '.join(sorted(inputs))}",
                field="param",
            )
        kind = inputs[name].type
        parse, expected = _PARSERS.get(kind, (str, "text"))
        try:
            value = parse(text)
        except (ValueError, KeyError) as exc:
            raise SpecError(
                f"--param {name}={text!r}: {name} is {kind}; give {expected}", field="param"
            ) from exc
        if kind in _JSON_KINDS and not isinstance(value, _JSON_KINDS[kind]):
            raise SpecError(
                f"--param {name}={text!r}: {name} is {kind}; give {expected}", field="param"
            )
        arguments[name] = value
    return arguments


@dataclass(frozen=True)
class LocalRun:
    """Where a local run went: the local cluster it deployed to and its artifacts' folder."""

    cluster: LocalStatus
    pipeline_root: Path
    arguments: dict[str, Any]


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def run_local(
    path: Path,
    arguments: dict[str, Any],
    *,
    home: Home | None = None,
    pipeline_root: Path | None = None,
) -> LocalRun:
    """Run the pipeline in ``path`` with kfp.local on this machine, deploying to ``timonel
    local`` (started when it does not run, reused when it does).

    Each task is a subprocess of this Python (``SubprocessRunner(use_venv=False)``: the
    components' image is not used, this environment's Timonel is), with ``$KUBECONFIG`` set to the
    local cluster's. A pipeline's ``gateway`` defaults to the local ingress, since the
    InferenceService's URL (``NAME.NAMESPACE.example.com``) resolves nowhere here.
    """
    from kfp import local as kfp_local

    home = home or Home.default()
    cluster = local_up(home=home)
    root = pipeline_root or home.root / "pipeline-runs"
    root.mkdir(parents=True, exist_ok=True)
    pipeline = load_pipeline(path)
    arguments = dict(arguments)
    declared = pipeline.component_spec.inputs or {}
    if "gateway" in declared and not arguments.get("gateway") and cluster.ingress_port:
        arguments["gateway"] = f"http://127.0.0.1:{cluster.ingress_port}"
    kfp_local.init(runner=kfp_local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    with _environment("KUBECONFIG", str(home.kubeconfig)):
        pipeline(**arguments)
    return LocalRun(cluster=cluster, pipeline_root=root, arguments=arguments)


def run_on_kfp(
    path: Path,
    arguments: dict[str, Any],
    *,
    host: str,
    experiment: str | None = None,
    client: Any = None,
) -> Any:
    """Start a run of the pipeline in ``path`` on the Kubeflow Pipelines API at ``host``.

    The pipeline is compiled afresh, so the run is of the code as it is. ``client`` is a
    ``kfp.Client`` (one for ``host`` by default). Returns kfp's ``RunPipelineResult``.
    """
    from kfp_server_api.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        if client is None:
            import kfp

            with warnings.catch_warnings():
                # said on every construction, whatever the server's version
                warnings.filterwarnings("ignore", "This client only works", FutureWarning)
                client = kfp.Client(host=host)
        with tempfile.TemporaryDirectory(prefix="timonel-pipeline-") as tmp:
            compiled = compile_pipeline(path, Path(tmp) / f"{path.stem}.yaml")
            return client.create_run_from_pipeline_package(
                str(compiled), arguments=arguments, experiment_name=experiment
            )
    except ApiException as exc:
        raise ApiError(
            f"Kubeflow Pipelines at {host} refused the run of {path.stem}: {exc.status} "
            f"{exc.reason}; check the host (the ml-pipeline API, e.g. http://HOST:8888) and "
            "that your account may create runs in its namespace",
            status=Status(code=exc.status or 0, reason=str(exc.reason), message=str(exc.body)),
        ) from exc
    except HTTPError as exc:
        raise ClusterUnreachable(
            f"cannot reach Kubeflow Pipelines at {host} ({exc}); check --kfp-host, or "
            "port-forward the API (`kubectl -n kubeflow port-forward svc/ml-pipeline-ui "
            "8080:80`) and pass --kfp-host http://127.0.0.1:8080",
            server=host,
        ) from exc


def run_on_vertex(
    path: Path,
    arguments: dict[str, Any],
    *,
    project: str,
    region: str,
    pipeline_root: str,
    service_account: str | None = None,
    labels: dict[str, str] | None = None,
    wait: bool = False,
) -> Any:
    """Submit a run of the pipeline in ``path`` to Vertex AI Pipelines (compiled afresh), with
    ``timonel.kfp.vertex.submit``; returns the ``aiplatform.PipelineJob``."""
    from timonel.kfp import vertex

    with tempfile.TemporaryDirectory(prefix="timonel-pipeline-") as tmp:
        compiled = compile_pipeline(path, Path(tmp) / f"{path.stem}.yaml")
        return vertex.submit(
            compiled,
            project=project,
            region=region,
            pipeline_root=pipeline_root,
            parameters=arguments,
            service_account=service_account,
            labels=labels,
            wait=wait,
        )
