"""``timonel deploy | status | canary | promote | rollback | delete | list``: a cluster's models.

Every command connects with ``--context`` (else the kubeconfig kubectl would use), calls one
function of ``timonel.kube.rollout`` and prints the result. ``deploy`` takes exactly the flags of
``timonel render`` (read from that command, not redefined, so the two never drift) plus the
flags of a write: ``--wait``, ``--timeout``, ``--dry-run``, ``--context``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from timonel.kube.client import Cluster
    from timonel.kube.status import ServiceStatus
    from timonel.kube.wait import Verdict


class Output(StrEnum):
    table = "table"
    json = "json"


_CONTEXT = typer.Option(
    None, "--context", help="kubeconfig context (default: the current one, or in-cluster)."
)
_NAMESPACE = typer.Option(None, "--namespace", "-n", help="Namespace (default: the context's).")
_WAIT = typer.Option(False, "--wait", help="Return once the change is served.")
_TIMEOUT = typer.Option(600.0, "--timeout", help="Seconds --wait waits before giving up.")
_DRY_RUN = typer.Option(
    False, "--dry-run", help="Have the server validate the change without storing it."
)
_OUTPUT = typer.Option(Output.table, "-o", "--output", help="table or json.")


@contextlib.contextmanager
def _connect(context: str | None, namespace: str | None = None) -> Iterator[Cluster]:
    from timonel.kube.client import Cluster

    with Cluster.connect(context=context, namespace=namespace) as cluster:
        yield cluster


@contextlib.contextmanager
def _progress(name: str, wait: bool) -> Iterator[Callable[[Any, Verdict], None] | None]:
    """A spinner on stderr that says what the wait is waiting for, as the watch reports it."""
    if not wait:
        yield None
        return
    from timonel.cli import stderr

    with stderr.status(f"{name}: waiting for the API server") as spinner:

        def show(_: Any, verdict: Verdict) -> None:
            if not verdict.done:
                spinner.update(f"{name}: waiting for {verdict.waiting_for}")

        yield show


def _print_status(
    status: ServiceStatus, output: Output = Output.table, rollout: str | None = None
) -> None:
    """``rollout``: the unfinished rollout that split the traffic, if any."""
    from rich.markup import escape
    from rich.table import Table

    from timonel.cli import stdout

    if output is Output.json:
        stdout.print_json(data=status.to_dict() | {"rollout": rollout})
        return
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    state = "[green]Ready[/]" if status.ready else "[yellow]Not ready[/]"
    summary.add_row("name", f"{status.namespace}/{status.name}")
    summary.add_row("ready", state)
    summary.add_row("url", status.url or "-")
    summary.add_row("storage uri", status.storage_uri or "-")
    summary.add_row("mode", status.mode)
    summary.add_row("generation", f"{status.generation} (observed {status.observed_generation})")
    if status.canary_percent is not None:
        summary.add_row("canary", f"{status.canary_percent}%")
    for label, revision in (
        ("latest created", status.latest_created_revision),
        ("latest ready", status.latest_ready_revision),
        ("rolled out", status.latest_rolledout_revision),
        ("previous", status.previous_rolledout_revision),
    ):
        if revision:
            summary.add_row(label, revision)
    if not status.ready:
        summary.add_row("why", status.why_not_ready)
    if rollout:
        summary.add_row("rollout", f"[yellow]{escape(rollout)}[/]")
    stdout.print(summary)
    if status.traffic:
        traffic = Table("revision", "traffic", "tag", "latest", "url", title="traffic")
        for target in status.traffic:
            traffic.add_row(
                target.revision,
                f"{target.percent}%",
                target.tag or "",
                "yes" if target.latest else "",
                target.url or "",
            )
        stdout.print(traffic)


def _split(status: ServiceStatus) -> str:
    return "/".join(str(t.percent) for t in status.traffic) or "-"


def _render_parameters() -> list[inspect.Parameter]:
    """``timonel render``'s parameters (name, --storage-uri, -f, the spec flags), but -o."""
    from timonel.cli import render

    scratch = typer.Typer()
    render.register(scratch)
    command = next(
        c for c in scratch.registered_commands if getattr(c.callback, "__name__", "") == "render"
    )
    assert command.callback is not None
    signature = inspect.signature(command.callback, eval_str=True)
    return [p for name, p in signature.parameters.items() if name != "output"]


def _option(name: str, default: Any, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def register(app: typer.Typer) -> None:
    render_parameters = _render_parameters()

    def deploy(**params: Any) -> None:
        """Create or update a model's InferenceService (the flags of `timonel render`).

        A release URI (.../v<N>) must be published; its manifest says which TensorFlow exported
        the model, and the runtime version is checked against it.
        """
        from timonel.cli import stderr
        from timonel.cli.spec_options import OPTION_PATHS, spec_from_options
        from timonel.kube import rollout
        from timonel.spec import load_yaml

        spec_file: Path | None = params["spec_file"]
        base = load_yaml(spec_file) if spec_file is not None else None
        options = {key: value for key, value in params.items() if key in OPTION_PATHS}
        with _connect(params["context"]) as cluster:
            if options.get("namespace") is None and not (
                isinstance(base, dict) and base.get("namespace")
            ):
                options["namespace"] = cluster.namespace
            spec, notes = spec_from_options(
                options, base=base, model_size=params["model_size"], check_release=True
            )
            for note in notes:
                stderr.print(note)
            with _progress(spec.name, params["wait"]) as on_change:
                status = rollout.deploy(
                    spec,
                    cluster=cluster,
                    wait=params["wait"],
                    timeout=params["timeout"],
                    dry_run=params["dry_run"],
                    on_change=on_change,
                )
        _report("deployed", status, dry_run=params["dry_run"], waited=params["wait"])

    deploy.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # typer reads the signature inspect.signature finds here
        [
            *render_parameters,
            _option("wait", _WAIT, bool),
            _option("timeout", _TIMEOUT, float),
            _option("dry_run", _DRY_RUN, bool),
            _option("context", _CONTEXT, str | None),
        ]
    )
    app.command("deploy")(deploy)

    @app.command()
    def status(
        name: str = typer.Argument(..., help="InferenceService name."),
        namespace: str | None = _NAMESPACE,
        context: str | None = _CONTEXT,
        output: Output = _OUTPUT,
    ) -> None:
        """Readiness, URL, revisions and traffic split of a deployed model, and the rollout
        that split it when one is unfinished."""
        from timonel.kube.records import read_record
        from timonel.kube.requests import get_object
        from timonel.kube.resources import INFERENCE_SERVICE
        from timonel.kube.status import read_status
        from timonel.rollouts.state import describe, read_state

        with _connect(context, namespace) as cluster:
            isvc = cluster.send(get_object(INFERENCE_SERVICE, cluster.namespace, name))
            state = read_state(read_record(cluster, cluster.namespace, name))
            _print_status(read_status(isvc), output, describe(state, name) if state else None)

    @app.command()
    def canary(
        name: str = typer.Argument(..., help="InferenceService name."),
        storage_uri: str = typer.Option(..., "--storage-uri", help="The new release's URI."),
        percent: int = typer.Option(
            ..., "--percent", help="Share of traffic for the new release, 0-100."
        ),
        namespace: str | None = _NAMESPACE,
        context: str | None = _CONTEXT,
        wait: bool = _WAIT,
        timeout: float = _TIMEOUT,
        dry_run: bool = _DRY_RUN,
    ) -> None:
        """Send a share of the traffic to a new release (its URI and share in one update)."""
        from timonel.cli.spec_options import flags_named
        from timonel.kube import rollout

        flags = {"spec.predictor.canaryTrafficPercent": "--percent", "storageUri": "--storage-uri"}
        with flags_named(flags):
            _change(
                f"canary at {percent}%",
                name,
                functools.partial(rollout.canary, name, storage_uri, percent),
                namespace=namespace,
                context=context,
                wait=wait,
                timeout=timeout,
                dry_run=dry_run,
            )

    for command, done, help_text in (
        ("promote", "promoted", "Give the canary all the traffic."),
        ("rollback", "rolled back", "Send all traffic back to the previous release."),
    ):
        app.command(command, help=help_text)(_traffic_command(command, done))

    @app.command()
    def delete(
        name: str = typer.Argument(..., help="InferenceService name."),
        namespace: str | None = _NAMESPACE,
        context: str | None = _CONTEXT,
        wait: bool = typer.Option(False, "--wait", help="Return once it is gone."),
        timeout: float = _TIMEOUT,
        dry_run: bool = _DRY_RUN,
    ) -> None:
        """Delete a model's InferenceService (its revisions stop)."""
        from timonel.cli import stdout
        from timonel.kube import rollout

        with _connect(context, namespace) as cluster:
            rollout.delete(name, cluster=cluster, wait=wait, timeout=timeout, dry_run=dry_run)
            where = f"{namespace or cluster.namespace}/{name}"
        stdout.print(f"{where} deleted" + (" (dry run)" if dry_run else ""))

    @app.command("list")
    def list_(
        namespace: str | None = _NAMESPACE,
        context: str | None = _CONTEXT,
        output: Output = _OUTPUT,
    ) -> None:
        """The InferenceServices in a namespace, with readiness and traffic split."""
        from rich.table import Table

        from timonel.cli import stdout
        from timonel.kube import rollout

        with _connect(context, namespace) as cluster:
            services = rollout.list_services(cluster=cluster)
        if output is Output.json:
            stdout.print_json(data=[s.to_dict() for s in services])
            return
        table = Table("name", "ready", "url", "storage uri", "traffic")
        for service in services:
            table.add_row(
                service.name,
                "True" if service.ready else "False",
                service.url or "",
                service.storage_uri or "",
                _split(service),
            )
        stdout.print(table)


def _traffic_command(function: str, done: str) -> Callable[..., None]:
    """``timonel promote`` or ``timonel rollback``: the same flags, one rollout function each."""

    def command(
        name: str = typer.Argument(..., help="InferenceService name."),
        namespace: str | None = _NAMESPACE,
        context: str | None = _CONTEXT,
        wait: bool = _WAIT,
        timeout: float = _TIMEOUT,
        dry_run: bool = _DRY_RUN,
    ) -> None:
        from timonel.kube import rollout

        _change(
            done,
            name,
            functools.partial(getattr(rollout, function), name),
            namespace=namespace,
            context=context,
            wait=wait,
            timeout=timeout,
            dry_run=dry_run,
        )

    return command


def _change(
    what: str,
    name: str,
    change: Callable[..., ServiceStatus],
    *,
    namespace: str | None,
    context: str | None,
    wait: bool,
    timeout: float,
    dry_run: bool,
) -> None:
    """Run one of canary/promote/rollback on the context's cluster, with progress, and report."""
    with _connect(context, namespace) as cluster, _progress(name, wait) as on_change:
        result = change(
            cluster=cluster, wait=wait, timeout=timeout, dry_run=dry_run, on_change=on_change
        )
    _report(what, result, dry_run=dry_run, waited=wait)


def _report(what: str, status: ServiceStatus, *, dry_run: bool, waited: bool) -> None:
    from timonel.cli import stdout

    where = f"{status.namespace}/{status.name}"
    if dry_run:
        stdout.print(f"{where}: {what} (dry run: validated by the server, nothing stored)")
        return
    if not waited:
        stdout.print(
            f"{where}: {what} (generation {status.generation}); `timonel status {status.name}` "
            "follows it, or pass --wait"
        )
        return
    stdout.print(f"{where}: {what}, served")
    _print_status(status)
