"""``timonel logs NAME``: a model server's log through the Kubernetes API, on any cluster.

It calls ``timonel.kube.logs.logs`` and prints each line as it comes. When several pods are read
(a canary beside the stable revision, several replicas), a ``==> POD (revision R) <==`` line
names the pod before each block of its lines, as ``tail`` names files. ``-f`` follows until Ctrl-C,
which ends it quietly with code 0, or until the pods end.
"""

from __future__ import annotations

from enum import StrEnum

import typer

from timonel.cli.cluster import _CONTEXT, _NAMESPACE, _connect
from timonel.kserve.vocabulary import CONTAINER_NAME, INITIALIZER_CONTAINER


class Container(StrEnum):
    kserve_container = CONTAINER_NAME
    storage_initializer = INITIALIZER_CONTAINER


def register(app: typer.Typer) -> None:
    @app.command()
    def logs(
        name: str = typer.Argument(..., help="InferenceService name."),
        follow: bool = typer.Option(
            False, "-f", "--follow", help="Keep printing new lines until Ctrl-C or the pods end."
        ),
        revision: str | None = typer.Option(
            None, "--revision", help="Read this revision's pods (default: those taking traffic)."
        ),
        container: Container = typer.Option(
            Container.kserve_container,
            "--container",
            "-c",
            help="The model server, or the init container that copies the model in.",
        ),
        tail: int | None = typer.Option(
            None, "--tail", min=0, help="Print only the last N lines of each log."
        ),
        previous: bool = typer.Option(
            False, "--previous", "-p", help="The run before the container's last restart."
        ),
        namespace: str | None = _NAMESPACE,
        context: str | None = _CONTEXT,
    ) -> None:
        """A model server's log (kubectl logs for an InferenceService's pods)."""
        from timonel.cli import stdout
        from timonel.kube.logs import logs as read_logs

        with (
            _connect(context, namespace) as cluster,
            read_logs(
                name,
                cluster=cluster,
                revision=revision,
                container=container.value,
                tail_lines=tail,
                previous=previous,
                follow=follow,
            ) as stream,
        ):
            several = len(stream.pods) > 1
            shown: str | None = None
            try:
                for line in stream:
                    if several and line.pod != shown:
                        of = f" (revision {line.revision})" if line.revision else ""
                        stdout.out(f"==> {line.pod}{of} <==")
                        shown = line.pod
                    stdout.out(line.text)  # as written: no markup, wrapping or highlighting
            except KeyboardInterrupt:  # the way a follow ends
                pass
