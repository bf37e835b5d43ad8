"""``timonel pipeline compile|run``: Timonel's KFP pipelines, compiled for the Kubeflow UI or run
on this machine, on a Kubeflow Pipelines server, or on Vertex AI Pipelines."""

from __future__ import annotations

from pathlib import Path

import typer

from timonel.errors import SpecError

_NAME_HELP = "A pipeline in pipelines/ (train_and_deploy, deploy_saved_model) or a .py file."
_PARAM_HELP = "A pipeline parameter, NAME=VALUE (repeat); lists and objects as JSON."


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals:
            raise SpecError(f"--label {pair!r}: expected KEY=VALUE", field="label")
        labels[key] = value
    return labels


def register(app: typer.Typer) -> None:
    pipeline = typer.Typer(
        name="pipeline",
        help="Compile Timonel's Kubeflow pipelines, or run one here (--local), on Kubeflow "
        "Pipelines (--kfp-host) or on Vertex AI Pipelines (--vertex).",
        no_args_is_help=True,
    )
    app.add_typer(pipeline)

    @pipeline.command()
    def compile(
        name: str = typer.Argument(..., help=_NAME_HELP),
        output: Path | None = typer.Option(
            None, "--output", "-o", help="Where to write the YAML (default: beside the .py)."
        ),
    ) -> None:
        """Compile a pipeline to the YAML the Kubeflow UI and Vertex AI take."""
        from timonel.cli import stdout
        from timonel.kfp.compile import compile_pipeline, find_pipeline

        stdout.print(str(compile_pipeline(find_pipeline(name, root=Path.cwd()), output)))

    @pipeline.command()
    def run(
        name: str = typer.Argument(..., help=_NAME_HELP),
        params: list[str] = typer.Option([], "--param", "-p", help=_PARAM_HELP),
        local: bool = typer.Option(
            False, "--local", help="Run here with kfp.local, deploying to `timonel local`."
        ),
        kfp_host: str | None = typer.Option(
            None, "--kfp-host", help="Run on the Kubeflow Pipelines API at this URL."
        ),
        experiment: str | None = typer.Option(
            None, "--experiment", help="Kubeflow experiment of the run (--kfp-host)."
        ),
        vertex: bool = typer.Option(False, "--vertex", help="Run on Vertex AI Pipelines."),
        project: str | None = typer.Option(None, "--project", help="Google Cloud project."),
        region: str | None = typer.Option(None, "--region", help="Vertex AI region."),
        pipeline_root: str | None = typer.Option(
            None,
            "--pipeline-root",
            help="Where the run's artifacts go: gs://BUCKET/PATH (--vertex), a folder (--local).",
        ),
        service_account: str | None = typer.Option(
            None, "--service-account", help="Service account the Vertex AI run acts as."
        ),
        labels: list[str] = typer.Option([], "--label", help="Vertex AI run label, KEY=VALUE."),
        wait: bool = typer.Option(False, "--wait", help="Wait until the Vertex AI run ends."),
    ) -> None:
        """Run a pipeline: exactly one of --local, --kfp-host URL, --vertex."""
        from timonel.cli import stdout
        from timonel.kfp.compile import find_pipeline, load_pipeline
        from timonel.kfp.run import parse_arguments, run_local, run_on_kfp, run_on_vertex

        chosen = [flag for flag, on in _targets(local, kfp_host, vertex) if on]
        if len(chosen) != 1:
            raise SpecError(
                "choose where the pipeline runs: exactly one of --local, --kfp-host URL or "
                f"--vertex (given: {', '.join(chosen) or 'none'})",
                field="local",
            )
        path = find_pipeline(name, root=Path.cwd())
        arguments = parse_arguments(load_pipeline(path), params)
        if local:
            done = run_local(
                path, arguments, pipeline_root=Path(pipeline_root) if pipeline_root else None
            )
            stdout.print(
                f"{path.stem} ran on timonel local ({done.cluster.url}); artifacts in "
                f"{done.pipeline_root}"
            )
        elif kfp_host:
            result = run_on_kfp(path, arguments, host=kfp_host, experiment=experiment)
            stdout.print(f"{path.stem} started on {kfp_host}: run {result.run_id}")
        else:
            missing = [
                flag
                for flag, value in (
                    ("--project", project),
                    ("--region", region),
                    ("--pipeline-root", pipeline_root),
                )
                if not value
            ]
            if missing:
                raise SpecError(
                    f"--vertex needs {', '.join(missing)}: the project and region the run "
                    "goes to, and a gs:// folder for its artifacts",
                    field="vertex",
                )
            job = run_on_vertex(
                path,
                arguments,
                project=str(project),
                region=str(region),
                pipeline_root=str(pipeline_root),
                service_account=service_account,
                labels=_labels(labels),
                wait=wait,
            )
            stdout.print(f"{path.stem} submitted to Vertex AI: {job.resource_name}")


def _targets(local: bool, kfp_host: str | None, vertex: bool) -> list[tuple[str, bool]]:
    return [("--local", local), ("--kfp-host", kfp_host is not None), ("--vertex", vertex)]
