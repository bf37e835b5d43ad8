"""``timonel local up|down|status``: the local cluster's daemon, from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from timonel.local.cluster import LocalStatus

_INGRESS_NOTE = "not running: this version has no router; revisions are reached directly"


def _print(state: LocalStatus) -> None:
    from rich.table import Table

    from timonel.cli import stdout

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_row("state", "[green]running[/]" if state.running else "[yellow]stopped[/]")
    if state.running:
        table.add_row("api", f"{state.url} (pid {state.pid}, since {state.started})")
    elif state.api_port:
        table.add_row("api port", str(state.api_port))
    ingress = _INGRESS_NOTE
    if state.ingress_port:
        ingress += f" (port {state.ingress_port} kept for the router)"
    table.add_row("ingress", ingress)
    table.add_row("kubeconfig", f"{state.kubeconfig} (context timonel-local)")
    table.add_row("state dir", str(state.home))
    stdout.print(table)


def register(app: typer.Typer) -> None:
    local = typer.Typer(
        name="local",
        help="Run the local cluster: a Kubernetes API with KServe's InferenceService and a "
        "controller that serves each revision with `timonel serve`.",
        no_args_is_help=True,
    )
    app.add_typer(local)

    @local.command()
    def up(
        api_port: int | None = typer.Option(
            None,
            "--api-port",
            help="API server port on 127.0.0.1, 1-65535 or 0 for any free one (default: last "
            "used, or any).",
        ),
        ingress_port: int | None = typer.Option(
            None, "--ingress-port", help="Port recorded for the ingress router, 1-65535."
        ),
    ) -> None:
        """Start the local cluster in the background (no-op if it runs) and print its kubeconfig."""
        from timonel import local as cluster
        from timonel.cli import stdout

        state = cluster.up(api_port, ingress_port)
        stdout.print(f"local cluster running at {state.url}")
        stdout.print(f"kubeconfig: {state.kubeconfig}")
        stdout.print(f"use it:     export KUBECONFIG={state.kubeconfig}")

    @local.command()
    def down() -> None:
        """Stop the local cluster; its InferenceServices stay stored for the next `up`."""
        from timonel import local as cluster
        from timonel.cli import stdout

        stopped = cluster.down()
        stdout.print("local cluster stopped" if stopped else "local cluster was not running")

    @local.command()
    def status() -> None:
        """Show whether the local cluster runs, its API URL and kubeconfig."""
        from timonel import local as cluster

        _print(cluster.status())
