"""The gcloud, helm and kubectl commands that make a GKE cluster ready to serve a ServingSpec."""

from __future__ import annotations

import re
from dataclasses import dataclass

from timonel.errors import SpecError
from timonel.gke.catalog import CATALOG, DEFAULT_SHARED_CLIENTS
from timonel.gke.scheduling import SPOT_LABEL, GpuRequest

#: The KServe release whose CRDs ``shared/kserve/`` holds, installed by the plan.
KSERVE_VERSION = "v0.20.0"
#: What KServe's Knative mode runs on, at the versions KServe's own installer pins
#: (kserve-deps.env): cert-manager for its webhook certificates, Knative Serving via its operator.
CERT_MANAGER_VERSION = "v1.17.0"
KNATIVE_OPERATOR_VERSION = "v1.21.1"
KNATIVE_SERVING_VERSION = "1.21.1"
CPU_MACHINE_TYPE = "e2-standard-4"
#: The namespace models are served from, which the pipeline's Role grants.
SERVING_NAMESPACE = "models"

#: GKE's rule for cluster names: lower case, digits and '-', at most 40, starting with a letter.
_CLUSTER_NAME = re.compile(r"^[a-z](?:[-a-z0-9]{0,38}[a-z0-9])?$")
#: A region (us-central1) or a zone (us-central1-a).
_LOCATION = re.compile(r"^[a-z]+(?:-[a-z]+)+[0-9]+(?:-[a-z])?$")

_KNATIVE_SERVING = f"""kubectl apply -f - <<'EOF'
apiVersion: v1
kind: Namespace
metadata:
  name: knative-serving
---
apiVersion: operator.knative.dev/v1beta1
kind: KnativeServing
metadata:
  name: knative-serving
  namespace: knative-serving
spec:
  version: "{KNATIVE_SERVING_VERSION}"
  ingress:
    kourier:
      enabled: true
  config:
    network:
      ingress-class: kourier.ingress.networking.knative.dev
    autoscaler:
      allow-zero-initial-scale: "true"
EOF"""


@dataclass(frozen=True)
class ClusterPlan:
    """The gcloud and kubectl commands that make a cluster ready to serve, in order."""

    commands: tuple[str, ...]
    notes: tuple[str, ...]

    def render(self) -> str:
        """The plan as a shell script: notes as comments, one command per paragraph."""
        lines = ["#!/bin/sh", "set -eu"]
        lines += [f"# {note}" for note in self.notes]
        for command in self.commands:
            lines += ["", command]
        return "\n".join(lines) + "\n"


def _join(*parts: str) -> str:
    return " \\\n    ".join(parts)


def plan_cluster(
    cluster: str,
    location: str,
    accelerator: GpuRequest,
    *,
    project: str = "PROJECT_ID",
    min_nodes: int = 0,
    max_nodes: int = 3,
) -> ClusterPlan:
    """Commands for a GKE cluster with Workload Identity, a CPU pool and a GPU pool from zero.

    The GPU pool autoscales per zone between ``min_nodes`` and ``max_nodes`` and starts empty
    (``--num-nodes`` would default to 3); the driver version is always written because gcloud's
    default for it differs between releases. Autopilot clusters need no pools: pods select the
    GPU with node labels and Autopilot creates the nodes.
    """
    gpu = CATALOG[accelerator.type]
    if not _CLUSTER_NAME.match(cluster):
        raise SpecError(
            f"--cluster {cluster!r}: GKE cluster names are lower case letters, digits and '-', "
            "start with a letter and have at most 40 characters, e.g. serving-gpu",
            field="cluster",
        )
    if not _LOCATION.match(location):
        raise SpecError(
            f"--location {location!r}: expected a region such as us-central1 or a zone such as "
            "us-central1-a (`gcloud compute regions list` lists them)",
            field="location",
        )
    if not 0 <= min_nodes <= max_nodes or max_nodes < 1:
        raise SpecError(
            f"--min-nodes {min_nodes} / --max-nodes {max_nodes}: expected 0 <= min <= max and "
            "max >= 1 (the GPU pool's autoscaling bounds per zone)",
            field="max_nodes",
        )
    notes = [
        f"GKE plan for {cluster} in {location}: {accelerator.count} x {gpu.name} "
        f"({gpu.model}, {gpu.memory_gb} GB) per replica.",
        "Check that the GPU is offered in your zones: "
        f"gcloud compute accelerator-types list --filter=name:{gpu.name}",
        f"GPU quota must cover max nodes x GPUs per node ({max_nodes * accelerator.count}).",
    ]
    commands: list[str] = []
    if accelerator.autopilot:
        commands.append(
            _join(
                f"gcloud container clusters create-auto {cluster}",
                f"--project={project}",
                f"--location={location}",
            )
        )
        notes.append(
            "Autopilot has Workload Identity on and creates GPU nodes from the pod's node "
            "selector (cloud.google.com/gke-accelerator and -count); no node pool is needed."
        )
    else:
        accel = [f"type={gpu.name}", f"count={accelerator.count}", "gpu-driver-version=default"]
        if accelerator.sharing is not None:
            accel.append(f"gpu-sharing-strategy={accelerator.sharing}")
            shared = accelerator.max_shared_clients or DEFAULT_SHARED_CLIENTS
            accel.append(f"max-shared-clients-per-gpu={shared}")
        if accelerator.mig_partition is not None:
            accel.append(f"gpu-partition-size={accelerator.mig_partition}")
        # Shared or partitioned GPUs: one physical GPU per node, split by the sharing labels.
        machine = gpu.machine_types.get(accelerator.count) or gpu.machine_types[gpu.counts[0]]
        commands.append(
            _join(
                f"gcloud container clusters create {cluster}",
                f"--project={project}",
                f"--location={location}",
                f"--workload-pool={project}.svc.id.goog",
                f"--machine-type={CPU_MACHINE_TYPE}",
                "--num-nodes=1",
                "--enable-autoscaling",
                "--min-nodes=1",
                "--max-nodes=3",
            )
        )
        pool = [
            f"gcloud container node-pools create gpu-{gpu.name.removeprefix('nvidia-')}",
            f"--project={project}",
            f"--cluster={cluster}",
            f"--location={location}",
            f"--machine-type={machine}",
            f"--accelerator={','.join(accel)}",
            f"--num-nodes={min_nodes}",
            "--enable-autoscaling",
            f"--min-nodes={min_nodes}",
            f"--max-nodes={max_nodes}",
            "--location-policy=ANY",
            "--workload-metadata=GKE_METADATA",
        ]
        if accelerator.spot:
            pool += ["--spot", f"--node-taints={SPOT_LABEL}=true:NoSchedule"]
        commands.append(_join(*pool))
        notes.append(
            "GKE taints the GPU nodes nvidia.com/gpu:NoSchedule, so only pods that request a "
            "GPU land there; the pool shrinks to zero when no GPU pod is left."
        )
    operator_chart = (
        "https://github.com/knative/operator/releases/download/"
        f"knative-{KNATIVE_OPERATOR_VERSION}/knative-operator-{KNATIVE_OPERATOR_VERSION}.tgz"
    )
    commands += [
        _join(
            f"gcloud container clusters get-credentials {cluster}",
            f"--project={project}",
            f"--location={location}",
        ),
        _join(
            "helm install cert-manager cert-manager",
            "--repo https://charts.jetstack.io",
            f"--version {CERT_MANAGER_VERSION}",
            "--namespace cert-manager --create-namespace",
            "--set crds.enabled=true --wait",
        ),
        _join(
            f"helm install knative-operator {operator_chart}",
            "--namespace knative-operator --create-namespace --wait",
        ),
        _KNATIVE_SERVING,
        _join(
            "kubectl wait --for=condition=Ready knativeserving/knative-serving",
            "--namespace knative-serving --timeout=300s",
        ),
        _join(
            "helm install kserve-crd oci://ghcr.io/kserve/charts/kserve-crd",
            f"--version {KSERVE_VERSION}",
            "--namespace kserve --create-namespace",
        ),
        _join(
            "helm install kserve oci://ghcr.io/kserve/charts/kserve",
            f"--version {KSERVE_VERSION}",
            "--namespace kserve",
            "--set kserve.controller.deploymentMode=Knative --wait",
        ),
        "# the TF Serving runtime and the pipeline's RBAC, as the installed timonel prints them",
        "timonel kserve manifests runtime | kubectl apply -f -",
        _join(
            f"kubectl create namespace {SERVING_NAMESPACE} --dry-run=client -o yaml",
            "| kubectl apply -f -",
        ),
        f"timonel kserve manifests rbac --namespace {SERVING_NAMESPACE} | kubectl apply -f -",
    ]
    notes.append(
        f"KServe {KSERVE_VERSION} runs in Knative mode (scale-to-zero, revision canaries) on "
        f"Knative Serving {KNATIVE_SERVING_VERSION} with Kourier and cert-manager "
        f"{CERT_MANAGER_VERSION}; Standard mode needs neither but cannot scale to zero without "
        "KEDA."
    )
    return ClusterPlan(commands=tuple(commands), notes=tuple(notes))
