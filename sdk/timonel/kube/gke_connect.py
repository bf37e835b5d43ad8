"""Reach a GKE cluster by name, where no kubeconfig exists (a Vertex AI Pipelines task).

What ``gcloud container clusters get-credentials`` does, without gcloud: the cluster's endpoint
and CA certificate come from the GKE API (``projects.locations.clusters.get``), the bearer token
from google-auth (the task's service account, or the caller's application default credentials).
The ``kubernetes`` client's own ``gcp`` auth-provider loader then holds the token and, through
its ``refresh_api_key_hook``, asks for a new one before it expires, so a long rollout outlives
the token's hour. The result is an ordinary ``Cluster``: the same transport as a kubeconfig's.

The GKE API's address is a parameter so tests can answer from a stand-in on 127.0.0.1; nothing
here was run against the real GKE API from this project's machines.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from dataclasses import dataclass
from typing import Any, NamedTuple

from timonel import gcp
from timonel.errors import ClusterUnreachable
from timonel.kube.client import Cluster, Target

#: Google's GKE API; the v1 ``getCluster`` path is appended.
GKE_API = "https://container.googleapis.com"

#: Cluster states in which the control plane answers (RECONCILING: an upgrade or repair is under
#: way; DEGRADED: some nodes or add-ons are unhealthy). Others are PROVISIONING, STOPPING, ERROR.
_SERVING = frozenset({"RUNNING", "RECONCILING", "DEGRADED"})

#: Lifetime assumed for a token whose credentials give no expiry (Google's access tokens last an
#: hour), so the kubernetes loader still renews it.
_ASSUMED_LIFETIME = datetime.timedelta(minutes=55)


@dataclass(frozen=True, kw_only=True)
class GkeTarget(Target):
    """A GKE cluster named by project, location and name, for messages."""

    project: str
    location: str
    cluster: str

    def __str__(self) -> str:
        return (
            f"GKE cluster {self.cluster} (project {self.project}, location {self.location}) "
            "with Google credentials"
        )


@dataclass(frozen=True)
class ClusterAccess:
    """What a client needs from a cluster's GKE record: its API server URL and CA (base64 PEM)."""

    server: str
    ca_data: str


class _Token(NamedTuple):
    """The two fields the kubernetes loader reads from ``get_google_credentials()``."""

    token: str
    expiry: datetime.datetime


def cluster_access(record: dict[str, Any], *, private_endpoint: bool = False) -> ClusterAccess:
    """Read the endpoint and CA out of a ``getCluster`` answer (a ``Cluster`` resource).

    ``private_endpoint`` picks the control plane's internal address, for callers inside the
    cluster's VPC (a Vertex AI task peered with it) when the public endpoint is disabled.
    """
    name = record.get("name", "the cluster")
    state = record.get("status", "")
    if state not in _SERVING:
        raise ClusterUnreachable(
            f"GKE cluster {name} is {state or 'in an unknown state'}, so its API server does not "
            "answer; wait until `gcloud container clusters describe` shows RUNNING",
            context=name,
        )
    if private_endpoint:
        endpoint = (record.get("privateClusterConfig") or {}).get("privateEndpoint", "")
        field = "privateClusterConfig.privateEndpoint"
    else:
        endpoint = record.get("endpoint", "")
        field = "endpoint"
    ca_data = (record.get("masterAuth") or {}).get("clusterCaCertificate", "")
    if not endpoint or not ca_data:
        missing = field if not endpoint else "masterAuth.clusterCaCertificate"
        fix = (
            "connect through the public endpoint (leave private_endpoint off)"
            if private_endpoint
            else "enable the public endpoint, or connect with private_endpoint=True from "
            "inside the cluster's VPC"
        )
        raise ClusterUnreachable(
            f"GKE cluster {name} has no {missing} in its GKE record; {fix}", context=name
        )
    try:
        base64.b64decode(ca_data, validate=True)
    except binascii.Error as exc:
        raise ClusterUnreachable(
            f"GKE cluster {name}'s masterAuth.clusterCaCertificate is not base64 ({exc}); "
            "the GKE API answered something other than a cluster: check the API address",
            context=name,
            server=f"https://{endpoint}",
        ) from exc
    return ClusterAccess(server=f"https://{endpoint}", ca_data=ca_data)


def _get_cluster(
    credentials: Any, api_base: str, project: str, location: str, cluster: str, timeout: float
) -> dict[str, Any]:
    import requests
    from google.auth.exceptions import GoogleAuthError
    from google.auth.transport.requests import AuthorizedSession

    path = f"projects/{project}/locations/{location}/clusters/{cluster}"
    gcp.fresh_token(credentials)  # credential failures say how to log in, before any request
    try:
        with AuthorizedSession(credentials) as session:  # type: ignore[no-untyped-call]  # google-auth is untyped here
            response = session.get(f"{api_base.rstrip('/')}/v1/{path}", timeout=timeout)
    except (requests.RequestException, GoogleAuthError) as exc:
        raise ClusterUnreachable(
            f"cannot reach the GKE API at {api_base} to read {path}: {exc}; check the network "
            "(a VPC Service Controls perimeter must allow container.googleapis.com)",
            context=cluster,
        ) from exc
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        said = (body.get("error") or {}).get("message") or response.reason or ""
        raise gcp.refused(
            response.status_code,
            said,
            doing=f"read GKE cluster {path}",
            forbidden=(
                f"grant the account roles/container.clusterViewer on project {project} (it "
                "needs container.clusters.get)"
            ),
            not_found=(
                "check the project, location (region or zone) and name: "
                f"`gcloud container clusters list --project {project}` lists them"
            ),
        )
    return dict(body)


def connect_gke(
    *,
    project: str,
    location: str,
    cluster: str,
    namespace: str = "default",
    private_endpoint: bool = False,
    credentials: Any = None,
    api_base: str = GKE_API,
    timeout: float = 30.0,
) -> Cluster:
    """A ``Cluster`` for the GKE cluster ``project``/``location``/``cluster``, by name.

    For callers with Google credentials and no kubeconfig, such as a Vertex AI Pipelines task.
    ``credentials`` defaults to the application default credentials; the account needs
    ``container.clusters.get`` (roles/container.clusterViewer) to find the cluster, and Kubernetes
    RBAC (roles/container.developer, or a RoleBinding) to deploy in ``namespace``.
    """
    from kubernetes import client
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader

    credentials = credentials if credentials is not None else gcp.default_credentials()
    record = _get_cluster(credentials, api_base, project, location, cluster, timeout)
    access = cluster_access(record, private_endpoint=private_endpoint)
    target = GkeTarget(
        None,
        f"gke_{project}_{location}_{cluster}",
        project=project,
        location=location,
        cluster=cluster,
    )

    def google_token() -> _Token:
        token = gcp.fresh_token(credentials)
        expiry = credentials.expiry or datetime.datetime.now(datetime.UTC) + _ASSUMED_LIFETIME
        return _Token(token, expiry)

    kubeconfig = {
        "current-context": target.context,
        "clusters": [
            {
                "name": target.context,
                "cluster": {"server": access.server, "certificate-authority-data": access.ca_data},
            }
        ],
        "users": [{"name": target.context, "user": {"auth-provider": {"name": "gcp"}}}],
        "contexts": [
            {
                "name": target.context,
                "context": {"cluster": target.context, "user": target.context},
            }
        ],
    }
    configuration = client.Configuration()
    try:
        KubeConfigLoader(kubeconfig, get_google_credentials=google_token).load_and_set(
            configuration
        )
    except ConfigException as exc:
        raise ClusterUnreachable(
            f"cannot configure a client for {target}: {exc}; check the cluster's GKE record "
            f"(`gcloud container clusters describe {cluster} --location {location}`)",
            context=target.context,
            server=access.server,
        ) from exc
    configuration.retries = 0  # as Cluster.connect: refused connections are reported by us
    return Cluster(client.ApiClient(configuration), namespace=namespace, target=target)
