"""``timonel render`` (a ServingSpec's InferenceService on stdout) and ``timonel gke plan``.

The manifest goes to stdout and everything else (which GPU ``--gpu auto`` chose, and why) to
stderr, so ``timonel render ... | kubectl apply -f -`` works.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer


class Output(StrEnum):
    yaml = "yaml"
    json = "json"


def register(app: typer.Typer) -> None:
    @app.command()
    def render(
        name: str | None = typer.Argument(
            None, help="InferenceService name (also TF Serving's model name)."
        ),
        storage_uri: str | None = typer.Option(
            None, "--storage-uri", help="Release URI: gs://, s3://, pvc://, https:// ..."
        ),
        namespace: str | None = typer.Option(
            None, "--namespace", "-n", help="Namespace of the InferenceService (default: default)."
        ),
        mode: str | None = typer.Option(None, "--mode", help="knative (default) or standard."),
        runtime_version: str | None = typer.Option(
            None, "--runtime-version", help="TF Serving release, e.g. 2.20.0 (no -gpu suffix)."
        ),
        tensorflow_version: str | None = typer.Option(
            None, "--tensorflow-version", help="TensorFlow version that exported the model."
        ),
        protocol: str | None = typer.Option(None, "--protocol", help="rest (default) or grpc."),
        gpu: str | None = typer.Option(
            None, "--gpu", help="GKE accelerator type (e.g. nvidia-l4), or auto."
        ),
        model_size: str | None = typer.Option(
            None, "--model-size", help="Model size for --gpu auto (e.g. 1.5GB); default: release."
        ),
        gpu_count: int | None = typer.Option(
            None, "--gpu-count", help="GPUs per replica; checked against what GKE offers."
        ),
        spot: bool = typer.Option(False, "--spot", help="Run on Spot GPU nodes."),
        gpu_sharing: str | None = typer.Option(None, "--gpu-sharing", help="time-sharing or mps."),
        max_shared_clients: int | None = typer.Option(
            None, "--max-shared-clients", help="Pods that share one GPU (with --gpu-sharing)."
        ),
        mig_partition: str | None = typer.Option(
            None, "--mig-partition", help="MIG partition size, e.g. 1g.10gb."
        ),
        autopilot: bool = typer.Option(
            False, "--autopilot", help="Target a GKE Autopilot cluster."
        ),
        cpu: str | None = typer.Option(None, "--cpu", help="CPU quantity, e.g. 2 or 500m."),
        memory: str | None = typer.Option(None, "--memory", help="Memory quantity, e.g. 4Gi."),
        min_replicas: int | None = typer.Option(
            None, "--min-replicas", help="0 scales to zero (Knative mode)."
        ),
        max_replicas: int | None = typer.Option(
            None, "--max-replicas", help="Upper bound of autoscaling (0: no bound in Knative)."
        ),
        scale_metric: str | None = typer.Option(
            None, "--scale-metric", help="concurrency | rps (Knative), cpu | memory (Standard)."
        ),
        scale_target: int | None = typer.Option(
            None, "--scale-target", help="Target per replica for --scale-metric (percent for cpu)."
        ),
        canary_percent: int | None = typer.Option(
            None, "--canary-percent", help="Share of traffic for the new model, 0-100."
        ),
        canary_name: str | None = typer.Option(
            None, "--canary-name", help="Standard mode: the canary predictor's name."
        ),
        canary_storage_uri: str | None = typer.Option(
            None, "--canary-storage-uri", help="Standard mode: the canary's release URI."
        ),
        predictor_name: str | None = typer.Option(
            None, "--predictor-name", help="Standard mode: the stable predictor's name."
        ),
        tag_routing: bool = typer.Option(
            False, "--tag-routing", help="Per-revision URLs (latest-/prev-) in Knative mode."
        ),
        service_account: str | None = typer.Option(
            None,
            "--service-account",
            help="Kubernetes service account that reads the bucket (Workload Identity).",
        ),
        enable_batching: bool = typer.Option(
            False, "--enable-batching", help="TF Serving server-side batching."
        ),
        spec_file: Path | None = typer.Option(
            None, "-f", "--file", help="ServingSpec YAML; flags override it."
        ),
        output: Output = typer.Option(Output.yaml, "-o", "--output", help="yaml or json."),
    ) -> None:
        """Write the KServe InferenceService for a model to stdout."""
        from timonel.cli import stderr, stdout
        from timonel.cli.spec_options import spec_from_options
        from timonel.kserve import render as isvc
        from timonel.spec import load_yaml

        options = {
            "name": name,
            "storage_uri": storage_uri,
            "namespace": namespace,
            "mode": mode,
            "runtime_version": runtime_version,
            "tensorflow_version": tensorflow_version,
            "protocol": protocol,
            "gpu": gpu,
            "gpu_count": gpu_count,
            "spot": spot,
            "autopilot": autopilot,
            "gpu_sharing": gpu_sharing,
            "max_shared_clients": max_shared_clients,
            "mig_partition": mig_partition,
            "cpu": cpu,
            "memory": memory,
            "min_replicas": min_replicas,
            "max_replicas": max_replicas,
            "scale_metric": scale_metric,
            "scale_target": scale_target,
            "canary_percent": canary_percent,
            "canary_name": canary_name,
            "canary_storage_uri": canary_storage_uri,
            "predictor_name": predictor_name,
            "tag_routing": tag_routing,
            "service_account": service_account,
            "enable_batching": enable_batching,
        }
        base = load_yaml(spec_file) if spec_file is not None else None
        spec, notes = spec_from_options(options, base=base, model_size=model_size)
        manifest = isvc.render(spec)
        for note in notes:
            stderr.print(note)
        text = isvc.to_json(manifest) if output is Output.json else isvc.to_yaml(manifest)
        stdout.out(text, end="")

    gke_app = typer.Typer(help="Google Kubernetes Engine: plan a cluster that serves on GPUs.")
    app.add_typer(gke_app, name="gke")

    @gke_app.command("plan")
    def plan(
        cluster: str = typer.Option(..., "--cluster", help="Cluster name."),
        location: str = typer.Option(..., "--location", help="Region or zone, e.g. us-central1."),
        gpu: str = typer.Option(..., "--gpu", help="GKE accelerator type, e.g. nvidia-l4."),
        gpu_count: int = typer.Option(1, "--gpu-count", help="GPUs per replica (per node)."),
        min_nodes: int = typer.Option(0, "--min-nodes", help="GPU pool minimum per zone."),
        max_nodes: int = typer.Option(3, "--max-nodes", help="GPU pool maximum per zone."),
        spot: bool = typer.Option(False, "--spot", help="Spot GPU nodes."),
        autopilot: bool = typer.Option(False, "--autopilot", help="An Autopilot cluster."),
        gpu_sharing: str | None = typer.Option(None, "--gpu-sharing", help="time-sharing or mps."),
        max_shared_clients: int | None = typer.Option(
            None, "--max-shared-clients", help="Pods that share one GPU (with --gpu-sharing)."
        ),
        mig_partition: str | None = typer.Option(
            None, "--mig-partition", help="MIG partition size, e.g. 1g.10gb."
        ),
        project: str = typer.Option("PROJECT_ID", "--project", help="Google Cloud project ID."),
    ) -> None:
        """Print the gcloud/kubectl commands for a GKE cluster with a GPU pool (not run)."""
        from timonel.cli import stdout
        from timonel.cli.spec_options import flags_named
        from timonel.gke.plan import plan_cluster
        from timonel.spec import Accelerator

        with flags_named():
            accelerator = Accelerator(
                gpu,
                count=gpu_count,
                spot=spot,
                autopilot=autopilot,
                sharing=gpu_sharing,
                max_shared_clients=max_shared_clients,
                mig_partition=mig_partition,
            )
            result = plan_cluster(
                cluster,
                location,
                accelerator,
                project=project,
                min_nodes=min_nodes,
                max_nodes=max_nodes,
            )
        stdout.out(result.render(), end="")
