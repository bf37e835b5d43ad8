"""The cluster a component talks to, from the inputs every Kubernetes-facing component takes.

A GKE cluster named by ``gke_project``, ``gke_location`` and ``gke_cluster`` is reached with the
task's Google credentials (``timonel.connect_gke``): what a Vertex AI Pipelines task, which has
no kubeconfig, needs. Otherwise ``context`` of ``$KUBECONFIG``, or inside a pod its service
account (``timonel.Cluster.connect``).
"""

from __future__ import annotations

from timonel.errors import SpecError
from timonel.kube import gke_connect
from timonel.kube.client import Cluster


def connect(
    *,
    context: str = "",
    namespace: str = "",
    gke_project: str = "",
    gke_location: str = "",
    gke_cluster: str = "",
) -> Cluster:
    """The ``Cluster`` the inputs name; empty strings are KFP's "not given"."""
    by_name = {
        "gke_project": gke_project,
        "gke_location": gke_location,
        "gke_cluster": gke_cluster,
    }
    given = [key for key, value in by_name.items() if value]
    if not given:
        return Cluster.connect(context=context or None, namespace=namespace or None)
    if len(given) < len(by_name):
        missing = ", ".join(key for key in by_name if key not in given)
        raise SpecError(
            f"a GKE cluster is named by project, location and cluster; {missing} not given: "
            "give all three, or none to use the pod's service account or $KUBECONFIG",
            field=missing.split(",")[0],
        )
    if context:
        raise SpecError(
            f"context {context!r} and gke_cluster {gke_cluster!r} both name a cluster; give one",
            field="context",
        )
    return gke_connect.connect_gke(
        project=gke_project,
        location=gke_location,
        cluster=gke_cluster,
        namespace=namespace or "default",
        api_base=gke_connect.GKE_API,
    )
