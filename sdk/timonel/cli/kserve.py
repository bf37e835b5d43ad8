"""``timonel kserve manifests``: the cluster-side manifests an installed Timonel carries."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer

from timonel.kserve.manifests import NAMESPACE, PIPELINE_NAMESPACE, PIPELINE_SERVICE_ACCOUNT


class Which(StrEnum):
    runtime = "runtime"
    rbac = "rbac"
    all = "all"


def register(app: typer.Typer) -> None:
    kserve_app = typer.Typer(
        help="KServe: the manifests a cluster needs before Timonel deploys to it.",
        no_args_is_help=True,
    )
    app.add_typer(kserve_app, name="kserve")

    @kserve_app.command("manifests")
    def manifests(
        which: Which = typer.Argument(
            Which.all,
            help="runtime: the TF Serving ClusterServingRuntime; rbac: the Role and RoleBinding "
            "a pipeline step deploys with; all: both.",
        ),
        namespace: str = typer.Option(
            NAMESPACE, "--namespace", "-n", help="Namespace the Role lets the account deploy in."
        ),
        service_account: str = typer.Option(
            f"{PIPELINE_NAMESPACE}/{PIPELINE_SERVICE_ACCOUNT}",
            "--service-account",
            help="[NAMESPACE/]NAME of the account pipeline steps run as (without a namespace: "
            "the one in --namespace).",
        ),
        output_dir: Path | None = typer.Option(
            None, "--output-dir", "-o", help="Write one YAML file per manifest into this folder."
        ),
    ) -> None:
        """Print the manifests as YAML, ready for `kubectl apply -f -` (or write them with -o)."""
        from timonel.cli import stdout
        from timonel.kserve import manifests as shipped

        account_namespace, _, account = service_account.rpartition("/")
        files = shipped.manifest_files(
            which.value,
            namespace=namespace,
            service_account=account,
            service_account_namespace=account_namespace or namespace,
        )
        if output_dir is None:
            documents = [document for docs in files.values() for document in docs]
            stdout.out(shipped.to_yaml(*documents), end="")
            return
        for path in shipped.write_files(output_dir, shipped.file_texts(files)):
            stdout.out(f"wrote {path}")
